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
    "eventRecordQPS": 0,  # no limit: every event is captured
    "rotateCertificates": False,
    "featureGates": {"RotateKubeletServerCertificate": False},
    "tlsCipherSuites": ["TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    "tlsCertFile": "/only/cert.crt",
    "authentication": {"anonymous": {"enabled": True}},
    "authorization": {"mode": "AlwaysAllow"},
}


def statuses(cfg: dict[str, object], kubeconfig: str = "") -> dict[str, str]:
    return {f.id: f.status for f in check_config(cfg, kubeconfig=kubeconfig)}


def test_secure_config_passes_only_what_is_enforced() -> None:
    got = statuses(SECURE)
    cis = {k: v for k, v in got.items() if k.startswith("4.2.")}
    assert list(cis) == [f"4.2.{i}" for i in range(1, 14)]
    # what the CIS items ask of fields pykubelet accepts but does not act on is not a PASS
    # 4.2.8: node mode rate-limits events; 4.2.10: client certificates rotate in node mode
    not_enforced = {"4.2.6", "4.2.11"}
    assert {k for k, v in cis.items() if v == "NOT-ENFORCED"} == not_enforced
    assert {v for k, v in cis.items() if k not in not_enforced} == {"PASS"}
    assert got["PK-KERNEL"] == "NOT-ENFORCED" and got["PK-AUDIT"] == "PASS"
    assert not any(v == "FAIL" for v in got.values())
    [pids] = [f for f in check_config(SECURE) if f.id == "4.2.13"]
    assert (pids.status, pids.detail) == ("PASS", "podPidsLimit = 4096")  # pod cgroup pids.max


def test_open_config_fails_where_cis_says() -> None:
    got = statuses(OPEN, kubeconfig="/etc/kubeconfig")
    assert got["4.2.1"] == "FAIL"
    assert got["4.2.2"] == "FAIL"
    assert got["4.2.3"] == "FAIL"
    assert got["4.2.4"] == "FAIL"
    assert got["4.2.5"] == "PASS"  # "0s" in a file means the 4h default, as upstream
    assert statuses({**OPEN, "streamingConnectionIdleTimeout": 0.0})["4.2.5"] == "FAIL"
    assert got["4.2.6"] == "WARN"
    assert got["4.2.8"] == "PASS"  # 0 is what CIS asks for; a negative rate does not load
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
    assert _row(text, "4.2.1")[0] == "PASS" and _row(text, "4.2.6")[0] == "NOT-ENFORCED"
    assert "accepted but not enforced" in text and "0 failed" in text
    out = io.StringIO()
    assert doctor_main(["--config", str(bad)], stdout=out) == 1
    assert _row(out.getvalue(), "4.2.4")[0] == "FAIL"
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
    assert _row(out.getvalue(), "4.2.1")[0] == _row(out.getvalue(), "4.2.4")[0] == "FAIL"
    nothing = tmp_path / "empty.yaml"
    nothing.write_text(yaml.safe_dump({k: SECURE[k] for k in ("apiVersion", "kind")}))
    out = io.StringIO()
    doctor_main(["--config", str(nothing), "--client-ca-file", "/pki/ca.crt"], stdout=out)
    assert _row(out.getvalue(), "4.2.3")[0] == "PASS"
    err = io.StringIO()
    assert doctor_main(["--config", str(tmp_path / "none.yaml")], stderr=err) == 2
    assert "cannot read --config" in err.getvalue()
    (tmp_path / "list.yaml").write_text("- 1\n")
    assert doctor_main(["--config", str(tmp_path / "list.yaml")], stderr=io.StringIO()) == 2


def _row(table: str, check_id: str) -> list[str]:
    [row] = [line.split() for line in table.splitlines() if line.split()[1:2] == [check_id]]
    return row


def test_json_and_junit_outputs(tmp_path: Path) -> None:
    import json
    import xml.etree.ElementTree as ET

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**SECURE, "readOnlyPort": 10255}))
    out = io.StringIO()
    assert doctor_main(["--config", str(cfg), "--output", "json"], stdout=out) == 1
    doc = json.loads(out.getvalue())
    by_id = {f["id"]: f["status"] for f in doc["findings"]}
    assert by_id["4.2.4"] == "FAIL" and by_id["4.2.6"] == "NOT-ENFORCED"
    assert doc["summary"]["FAIL"] == sum(s == "FAIL" for s in by_id.values()) >= 1
    out = io.StringIO()
    assert doctor_main(["--config", str(cfg), "--output", "junit"], stdout=out) == 1
    suite = ET.fromstring(out.getvalue().split("?>", 1)[1])
    cases = {c.get("name", "").split()[0]: c for c in suite.iter("testcase")}
    assert cases["4.2.4"].find("failure") is not None
    skipped = cases["4.2.6"].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("NOT-ENFORCED: ")
    assert cases["4.2.1"].find("failure") is None and cases["4.2.1"].find("skipped") is None
    assert suite.get("tests") == str(len(doc["findings"]))
    assert doctor_main(["--output", "yaml"], stderr=io.StringIO()) == 2


def test_the_packaged_helper_is_checked() -> None:
    from pykubelet.runtime.process.shimbin import native_helper_problem, packaged_shim

    out = io.StringIO()
    doctor_main(["--client-ca-file", "/pki/ca.crt"], stdout=out)
    row = _row(out.getvalue(), "PK-HELPER")
    if native_helper_problem() is None:
        assert row[0] == "PASS" and str(packaged_shim()) + ":" in row
    else:
        assert row[0] == "WARN"
    out = io.StringIO()
    doctor_main(["--client-ca-file", "/pki/ca.crt", "--runtime", "fake"], stdout=out)
    assert "PK-HELPER" not in out.getvalue()


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


def test_zero_in_a_file_is_the_default_but_a_zero_flag_is_zero(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**SECURE, "streamingConnectionIdleTimeout": "0s"}))
    out = io.StringIO()
    doctor_main(["--config", str(cfg)], stdout=out)
    assert _row(out.getvalue(), "4.2.5")[0] == "PASS"
    out = io.StringIO()
    flag = ["--config", str(cfg), "--streaming-connection-idle-timeout", "0"]
    assert doctor_main(flag, stdout=out) == 1
    assert _row(out.getvalue(), "4.2.5")[0] == "FAIL"


def test_config_dir_drop_ins_are_checked_too(tmp_path: Path) -> None:
    base = tmp_path / "c.yaml"
    base.write_text(yaml.safe_dump(SECURE))
    d = tmp_path / "conf.d"
    d.mkdir()
    head = {k: SECURE[k] for k in ("apiVersion", "kind")}
    (d / "10-ro.conf").write_text(yaml.safe_dump({**head, "readOnlyPort": 10255}))
    (d / "20-pids.conf").write_text(yaml.safe_dump({**head, "podPidsLimit": None}))
    out = io.StringIO()
    assert doctor_main(["--config", str(base), "--config-dir", str(d)], stdout=out) == 1
    assert _row(out.getvalue(), "4.2.4")[0] == "FAIL"  # from the drop-in
    assert _row(out.getvalue(), "4.2.13")[0] == "WARN"  # null removed the base's limit
