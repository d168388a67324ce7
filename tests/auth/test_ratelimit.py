"""The per-address limiter of authentication failures (pure logic, time passed in)."""

from __future__ import annotations

import pytest

from pykubelet.auth.ratelimit import AuthFailureLimiter, LimiterSettings


def test_burst_then_refusal_then_refill() -> None:
    lim = AuthFailureLimiter(LimiterSettings(burst=3, rate=0.5))
    now = 100.0
    for _ in range(3):
        assert lim.retry_after("10.0.0.1", now) == 0
        lim.record_failure("10.0.0.1", now)
    wait = lim.retry_after("10.0.0.1", now)
    assert wait == pytest.approx(2.0)  # one token at 0.5/s
    assert lim.retry_after_header(wait) == "2"
    assert lim.refused == 1
    assert lim.retry_after("10.0.0.1", now + 1.0) == pytest.approx(1.0)
    assert lim.retry_after("10.0.0.1", now + 2.0) == 0
    lim.record_failure("10.0.0.1", now + 2.0)
    assert lim.retry_after("10.0.0.1", now + 2.0) > 0


def test_other_addresses_are_unaffected() -> None:
    lim = AuthFailureLimiter(LimiterSettings(burst=2, rate=0.1))
    for _ in range(10):
        lim.record_failure("192.0.2.7", 5.0)
    assert lim.retry_after("192.0.2.7", 5.0) > 0
    assert lim.retry_after("192.0.2.8", 5.0) == 0
    assert lim.retry_after("::1", 5.0) == 0


def test_full_buckets_are_forgotten_and_memory_is_bounded() -> None:
    lim = AuthFailureLimiter(LimiterSettings(burst=2, rate=1.0, max_addresses=100))
    lim.record_failure("a", 0.0)
    assert lim.tracked() == 1
    assert lim.retry_after("a", 10.0) == 0
    assert lim.tracked() == 0
    for i in range(1000):
        lim.record_failure(f"10.1.{i // 256}.{i % 256}", 0.0)
    assert lim.tracked() == 100


@pytest.mark.parametrize("kwargs", [{"burst": 0}, {"rate": 0}, {"rate": -1}, {"max_addresses": 0}])
def test_settings_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LimiterSettings(**kwargs)  # type: ignore[arg-type]
