"""``pykubelet doctor``: CIS §4.2 table from a config file, probes of a live endpoint."""

from __future__ import annotations

import io
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from pykubelet.security.doctor import check_config, doctor_main, probe_endpoint
from tests.security.pki import CA

SECURE = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "kind": "KubeletConfiguration",
    "address": "127.0.0.1",
    "tlsCertFile": "/pki/kubelet.crt",
    "tlsPrivateKeyFile": "/pki/kubelet.key",
    "authentication": {"x509": {"clientCAFile": "/pki/ca.crt"}},
    "podPidsLimit": 4096,
    "protectKernelDefaults": True,
    "auditLogPath": "/var/log/pykubelet/audit.log",
}

OPEN = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "kind": "KubeletConfiguration",
    "readOnlyPort": 10255,
    "streamingConnectionIdleTimeout": "0s",
    "makeIPTablesUtilChains": False,
    "eventRecordQPS": -1,
    "rotateCertificates": False,
    "featureGates": {"RotateKubeletServerCertificate": False},
    "tlsCipherSuites": ["TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    "tlsCertFile": "/only/cert.crt",
    "authentication": {"anonymous": {"enabled": True}},
    "authorization": {"mode": "AlwaysAllow"},
}


def statuses(cfg: dict[str, object], **kw: str) -> dict[str, str]:
    return {f.id: f.status for f in check_config(cfg, **kw)}


def test_secure_config_passes_every_cis_item() -> None:
    got = statuses(SECURE)
    cis = {k: v for k, v in got.items() if k.startswith("4.2.")}
    assert list(cis) == [f"4.2.{i}" for i in range(1, 14)]
    assert set(cis.values()) == {"PASS"}
    assert got["PK-KERNEL"] == "PASS" and got["PK-AUDIT"] == "PASS"
    assert not any(v == "FAIL" for v in got.values())


def test_open_config_fails_where_cis_says() -> None:
    got = statuses(OPEN, kubeconfig="/etc/kubeconfig")
    assert got["4.2.1"] == "FAIL"
    assert got["4.2.2"] == "FAIL"
    assert got["4.2.3"] == "FAIL"
    assert got["4.2.4"] == "FAIL"
    assert got["4.2.5"] == "FAIL"
    assert got["4.2.6"] == "WARN"
    assert got["4.2.8"] == "WARN"
    assert got["4.2.9"] == "FAIL"  # only one of cert/key
    assert got["4.2.10"] == "FAIL"
    assert got["4.2.11"] == "FAIL"
    assert got["4.2.12"] == "FAIL"
    assert got["4.2.13"] == "WARN"
    assert got["PK-ANONYMOUS-AUTH"] == "FAIL"
    assert got["PK-ALWAYS-ALLOW"] == "FAIL"
    assert got["PK-READ-ONLY-PORT"] == "FAIL"


def test_defaults_only_warn_about_missing_client_ca() -> None:
    got = statuses({})
    assert got["4.2.3"] == "FAIL"  # nobody can authenticate without a CA or tokens
    assert got["4.2.1"] == got["4.2.2"] == got["4.2.4"] == got["4.2.5"] == "PASS"
    assert statuses({"authentication": {"tokenFile": "/t"}})["4.2.3"] == "WARN"


def test_cli_table_and_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(SECURE))
    bad.write_text(yaml.safe_dump({**OPEN, "tlsPrivateKeyFile": "/only/cert.key"}))
    out = io.StringIO()
    assert doctor_main(["--config", str(good)], stdout=out) == 0
    text = out.getvalue()
    assert text.splitlines()[0].split() == ["STATUS", "ID", "CHECK", "DETAIL"]
    assert "PASS    4.2.1" in text and "0 failed" in text
    out = io.StringIO()
    assert doctor_main(["--config", str(bad)], stdout=out) == 1
    assert "FAIL    4.2.4" in out.getvalue()
    # The configuration is loaded exactly as `pykubelet run` loads it: its errors are usage
    # errors, and run flags after the doctor's own apply.
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(OPEN))
    err = io.StringIO()
    assert doctor_main(["--config", str(broken)], stderr=err) == 2
    assert "tlsCertFile and tlsPrivateKeyFile must be set together" in err.getvalue()
    out = io.StringIO()
    argv = ["--config", str(good), "--anonymous-auth=true", "--read-only-port", "10255"]
    assert doctor_main(argv, stdout=out) == 1
    assert "FAIL    4.2.1" in out.getvalue() and "FAIL    4.2.4" in out.getvalue()
    nothing = tmp_path / "empty.yaml"
    nothing.write_text(yaml.safe_dump({k: SECURE[k] for k in ("apiVersion", "kind")}))
    out = io.StringIO()
    doctor_main(["--config", str(nothing), "--client-ca-file", "/pki/ca.crt"], stdout=out)
    assert "PASS    4.2.3" in out.getvalue()
    err = io.StringIO()
    assert doctor_main(["--config", str(tmp_path / "none.yaml")], stderr=err) == 2
    assert "cannot read --config" in err.getvalue()
    (tmp_path / "list.yaml").write_text("- 1\n")
    assert doctor_main(["--config", str(tmp_path / "list.yaml")], stderr=io.StringIO()) == 2


async def _site(app: web.Application, ssl_ctx: ssl.SSLContext | None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_ctx)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@pytest.fixture
async def endpoints(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """An open 'kubelet' (pods to anyone, weak TLS allowed), a closed one, and an HTTP port."""
    ca = CA(tmp_path / "pki")
    pair = ca.issue("server", cn="node", server=True, client=False)

    def app(status: int) -> web.Application:
        a = web.Application()

        async def pods(_: web.Request) -> web.Response:
            return web.Response(status=status, text="Unauthorized" if status == 401 else "{}")

        a.router.add_get("/pods", pods)
        a.router.add_get("/healthz", pods)
        return a

    weak = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    weak.load_cert_chain(str(pair.cert), str(pair.key))
    weak.set_ciphers("ALL:@SECLEVEL=0")
    strong = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    strong.load_cert_chain(str(pair.cert), str(pair.key))
    strong.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    runners = []
    urls = {}
    for name, status, ctx in (("open", 200, weak), ("closed", 401, strong), ("ro", 200, None)):
        r, port = await _site(app(status), ctx)
        runners.append(r)
        urls[name] = f"{'https' if ctx else 'http'}://127.0.0.1:{port}"
    try:
        yield urls
    finally:
        for r in runners:
            await r.cleanup()


async def test_probe_open_and_closed_endpoints(endpoints: dict[str, str]) -> None:
    import asyncio

    from tests.conftest import free_port

    closed_ro = f"http://127.0.0.1:{free_port()}"
    found = await asyncio.to_thread(
        probe_endpoint, endpoints["closed"], read_only_url=closed_ro, timeout=5
    )
    assert {f.id: f.status for f in found} == {
        "PROBE-PODS": "PASS",
        "PROBE-TLS": "PASS",
        "PROBE-RO": "PASS",
    }
    found = await asyncio.to_thread(
        probe_endpoint, endpoints["open"], read_only_url=endpoints["ro"], timeout=5
    )
    assert {f.id: f.status for f in found} == {
        "PROBE-PODS": "FAIL",
        "PROBE-TLS": "FAIL",
        "PROBE-RO": "FAIL",
    }
