"""Pod-spec features through the kubelet API on both runtimes: exec (and its recording), logs,
probes of every kind, hooks, port-forward and stats. On containerd, exec and port-forward go
through pykubelet's proxy to containerd's streaming server; probes reach the pod IP from the
host, as the Go kubelet's do."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import aiohttp
from kubernetes.client import Configuration
from kubernetes.stream.ws_client import WSClient

from pykubelet.network.localnet import guard_rule
from tests.conftest import free_port
from tests.e2e.node import NODE, Node, wait_for
from tests.e2e.test_standalone import pod_yaml


def _ws(node: Node, path: str) -> WSClient:
    cfg = Configuration()
    cfg.host = f"https://127.0.0.1:{node.port}"
    cfg.ssl_ca_cert = node.ca.cert_file
    cfg.cert_file = node.client.cert_file
    cfg.key_file = node.client.key_file
    cfg.verify_ssl = True
    return WSClient(cfg, f"wss://127.0.0.1:{node.port}{path}", headers=None, capture_all=True)


def _exec_path(pod: str, container: str, argv: list[str], *, stdin: bool = False) -> str:
    q = "&".join(f"command={quote(a, safe='')}" for a in argv)
    return f"/exec/default/{pod}-{NODE}/{container}?{q}&output=1&error=1" + (
        "&input=1" if stdin else ""
    )


def _exec(node: Node, pod: str, container: str, argv: list[str]) -> tuple[str, str, int | None]:
    ws = _ws(node, _exec_path(pod, container, argv))
    ws.run_forever(timeout=30)
    return ws.read_stdout(), ws.read_stderr(), ws.returncode


def _get_text(node: Node, path: str) -> str:
    ctx = ssl.create_default_context(cafile=node.ca.cert_file)
    ctx.load_cert_chain(node.client.cert_file, node.client.key_file)
    conn = http.client.HTTPSConnection("127.0.0.1", node.port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
    finally:
        conn.close()
    assert resp.status == 200, f"GET {path}: {resp.status} {body[:300]}"
    return body


def _running(node: Node, pod: str, container: str) -> dict[str, object]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (x := node.container(pod, container)) and x["state"].get("running") and x,
        30,
        f"{pod}/{container} running",
    )


def test_exec_logs_and_session_recording(node: Node, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    node.extra_args += ["--session-recording-dir", str(recordings)]
    node.start()
    node.write_pod(
        "tools",
        pod_yaml(
            "tools",
            """\
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo started-$((20+1)); exec sleep 3600"]
""",
        ),
    )
    _running(node, "tools", "c")
    out, err, rc = _exec(
        node, "tools", "c", ["sh", "-c", "echo out-$((6*7)); echo err >&2; exit 3"]
    )
    assert (out, err, rc) == ("out-42\n", "err\n", 3)

    ws = _ws(node, _exec_path("tools", "c", ["sh", "-c", "read x; echo got-$x"], stdin=True))
    ws.write_stdin("hello\n")
    ws.run_forever(timeout=30)
    assert (ws.read_stdout(), ws.returncode) == ("got-hello\n", 0)

    logs = wait_for(
        lambda: (t := _get_text(node, f"/containerLogs/default/tools-{NODE}/c")) and t, 10, "logs"
    )
    assert logs == "started-21\n"
    casts = wait_for(lambda: list(recordings.glob("*.cast")), 10, "session recordings")
    assert any("out-42" in p.read_text() for p in casts)


WEB = """\
  containers:
  - name: web
    image: busybox
    command:
    - sh
    - -c
    - mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www
    ports: [{containerPort: 8080}]
    startupProbe:
      exec: {command: ["cat", "/www/index.html"]}
      periodSeconds: 1
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "echo poststart-ran > /tmp/hook"]}
  - name: flaky
    image: busybox
    command: ["sh", "-c", "touch /tmp/alive; exec sleep 3600"]
    livenessProbe:
      exec: {command: ["test", "-f", "/tmp/alive"]}
      periodSeconds: 1
      failureThreshold: 1
"""


def test_probes_hooks_and_liveness_restart(node: Node) -> None:
    node.start()
    node.write_pod("web", pod_yaml("web", WEB))
    wait_for(
        lambda: (c := node.container("web", "web")) and c["ready"] and c["started"],
        40,
        "web ready (startup exec probe, then readiness httpGet to the pod IP)",
    )
    assert _exec(node, "web", "web", ["cat", "/tmp/hook"])[0] == "poststart-ran\n"
    _running(node, "web", "flaky")
    assert _exec(node, "web", "flaky", ["rm", "/tmp/alive"])[2] == 0
    flaky = wait_for(
        lambda: (c := node.container("web", "flaky")) and c["restartCount"] >= 1 and c,
        40,
        "flaky restarted by its liveness probe",
    )
    assert flaky["lastState"]["terminated"]["exitCode"] == 137
    web = node.container("web", "web")
    assert web is not None and web["restartCount"] == 0  # tcpSocket liveness kept passing


async def test_port_forward_and_stats(node: Node) -> None:
    node.start()
    node.write_pod("web", pod_yaml("web", WEB))
    wait_for(lambda: (c := node.container("web", "web")) and c["ready"], 40, "web ready")
    ctx = ssl.create_default_context(cafile=node.ca.cert_file)
    ctx.load_cert_chain(node.client.cert_file, node.client.key_file)
    url = f"https://127.0.0.1:{node.port}/portForward/default/web-{NODE}?port=8080"
    received = b""
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(url, ssl=ctx, protocols=("v4.channel.k8s.io",)) as ws,
    ):
        request = b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n"
        await ws.send_bytes(b"\x00" + request)
        deadline = time.monotonic() + 20
        while b"\r\n\r\nok\n" not in received and time.monotonic() < deadline:
            msg = await ws.receive(timeout=20)
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            if msg.data[:1] == b"\x00":
                received += msg.data[1:]
    # the first data message of a channel is the port, little-endian (2 bytes)
    assert received[:2] == (8080).to_bytes(2, "little")
    assert received[2:].startswith(b"HTTP/1.") and received.endswith(b"\r\n\r\nok\n")

    def web_stats() -> dict[str, object] | None:
        summary = node.get("/stats/summary")
        for pod in summary.get("pods") or []:
            if pod["podRef"]["name"] == f"web-{NODE}":
                for c in pod.get("containers") or []:
                    if c["name"] == "web" and (c.get("cpu") or {}).get("usageCoreNanoSeconds"):
                        return c  # type: ignore[no-any-return]
        return None

    c = wait_for(web_stats, 40, "the web container's stats in /stats/summary")
    assert c["memory"]["workingSetBytes"] > 0

    def pod_network() -> dict[str, object] | None:
        for pod in node.get("/stats/summary").get("pods") or []:
            if pod["podRef"]["name"] == f"web-{NODE}" and (pod.get("network") or {}).get("rxBytes"):
                return pod["network"]  # type: ignore[no-any-return]
        return None

    # the readiness probes and the port-forward above reached the pod through eth0
    net = wait_for(pod_network, 40, "the pod's network stats")
    assert net["txBytes"] > 0
    metrics = _get_text(node, "/metrics/resource")
    assert 'container_cpu_usage_seconds_total{container="web"' in metrics
    cadvisor = _get_text(node, "/metrics/cadvisor")
    assert any(
        line.startswith("container_cpu_usage_seconds_total{") and 'container="web"' in line
        for line in cadvisor.splitlines()
    )
    assert json.dumps(c)  # serialisable as the API returns it


async def test_attach_to_a_tty_container_and_exec_with_a_tty(node: Node) -> None:
    node.start()
    node.write_pod(
        "term",
        pod_yaml(
            "term",
            """\
  containers:
  - name: sh
    image: busybox
    command: ["sh"]
    stdin: true
    tty: true
""",
        ),
    )
    _running(node, "term", "sh")
    ctx = ssl.create_default_context(cafile=node.ca.cert_file)
    ctx.load_cert_chain(node.client.cert_file, node.client.key_file)
    base = f"https://127.0.0.1:{node.port}"
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            f"{base}/attach/default/term-{NODE}/sh?input=1&output=1&tty=1",
            protocols=("v4.channel.k8s.io",),
            ssl=ctx,
        ) as ws:
            await ws.send_bytes(b"\x00echo attached-$((40+2))\n")
            seen = b""
            deadline = time.monotonic() + 20
            while b"attached-42" not in seen and time.monotonic() < deadline:
                msg = await ws.receive(timeout=20)
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                seen += msg.data[1:]
            assert b"attached-42" in seen
        # an exec with a terminal: one output stream, and the shell sees a TTY
        async with s.ws_connect(
            f"{base}/exec/default/term-{NODE}/sh?command=sh&command=-c&"
            "command=test%20-t%200%20%26%26%20echo%20tty-yes&input=1&output=1&tty=1",
            protocols=("v4.channel.k8s.io",),
            ssl=ctx,
        ) as ws:
            out = b""
            status = b""
            while True:
                msg = await ws.receive(timeout=20)
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                if msg.data[:1] == b"\x01":
                    out += msg.data[1:]
                elif msg.data[:1] == b"\x03":
                    status += msg.data[1:]
            assert b"tty-yes" in out
            assert json.loads(status)["status"] == "Success"


# a Localhost profile that allows everything but mkdir: whether it took effect is observable
DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


def test_seccomp_profiles_where_the_runtime_applies_them(node: Node) -> None:
    """RuntimeDefault (pod) and Localhost (container: <rootDir>/seccomp/<localhostProfile>)."""
    profiles = node.root / "seccomp" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "deny-mkdir.json").write_text(json.dumps(DENY_MKDIR))
    node.start()
    node.write_pod(
        "sec",
        pod_yaml(
            "sec",
            """\
  securityContext:
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
  - name: local
    image: busybox
    command: ["sleep", "3600"]
    securityContext:
      seccompProfile: {type: Localhost, localhostProfile: profiles/deny-mkdir.json}
""",
        ),
    )
    if node.containerd is None:  # the process runtime installs no filters: refused, named
        for name in ("c", "local"):
            waiting = wait_for(
                lambda n=name: (c := node.container("sec", n)) and c["state"].get("waiting"),  # type: ignore[misc]
                30,
                f"refusal of {name}",
            )
            assert waiting["reason"] == "CreateContainerConfigError"
            assert "seccompProfile" in waiting["message"]
        return
    _running(node, "sec", "c")
    out, _, rc = _exec(node, "sec", "c", ["grep", "Seccomp:", "/proc/self/status"])
    assert rc == 0 and out.split() == ["Seccomp:", "2"]  # SECCOMP_MODE_FILTER
    _, err, rc = _exec(node, "sec", "c", ["mkdir", "/allowed"])
    assert (rc, err) == (0, "")  # RuntimeDefault allows mkdir
    _running(node, "sec", "local")
    _, err, rc = _exec(node, "sec", "local", ["mkdir", "/denied"])
    assert rc == 1 and "Operation not permitted" in err
    out, _, rc = _exec(node, "sec", "local", ["sh", "-c", "echo ok > /written && cat /written"])
    assert (rc, out) == (0, "ok\n")  # only what the profile names is denied


def test_pod_pids_limit_stops_forks_past_it(node: Node) -> None:
    """podPidsLimit is pids.max on the pod's cgroup (upstream's pod container manager): forks
    past it fail inside the container, on either runtime."""
    node.extra_args += ["--pod-max-pids", "12"]
    node.start()
    node.write_pod(
        "forks",
        pod_yaml(
            "forks",
            """\
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "for i in $(seq 20); do sleep 600 & done; echo spawned; sleep 3600"]
""",
        ),
    )
    _running(node, "forks", "c")
    uid = node.pod("forks")["metadata"]["uid"]  # type: ignore[index]
    pids_max = Path("/sys/fs/cgroup/pids", node.cgroup_root, f"pod{uid}", "pids.max")
    if Path("/sys/fs/cgroup/pids").is_dir():  # v1 or hybrid; pure v2 has it one level up
        assert pids_max.read_text().strip() == "12"
    # busybox sh stops at the first failed fork: "can't fork: Resource temporarily unavailable"
    logs = wait_for(
        lambda: (
            "can't fork" in (t := _get_text(node, f"/containerLogs/default/forks-{NODE}/c")) and t
        ),
        30,
        "a fork to fail",
    )
    assert "spawned" not in logs


def test_rotated_logs_and_containerlogs_reads_the_current_file(node: Node) -> None:
    """containerLogMaxSize/Files: the kubelet's rotation on containerd, the shim's on the
    process runtime; older rotations gzipped by the agent on both; /containerLogs serves the
    current file only, as upstream."""
    node.extra_args += ["--container-log-max-size", "4Ki", "--container-log-max-files", "3"]
    node.start()
    node.write_pod(
        "chatty",
        pod_yaml(
            "chatty",
            """\
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo $i ...........; i=$((i+1)); sleep 0.02; done"]
""",
        ),
    )
    _running(node, "chatty", "c")
    uid = node.pod("chatty")["metadata"]["uid"]  # type: ignore[index]
    current = node.root / "logs" / "pods" / f"default_chatty-{NODE}_{uid}" / "c" / "0.log"
    older = "0.log.*.gz"
    wait_for(lambda: len(list(current.parent.glob(older))) >= 1, 60, f"a rotation ({older})")

    def first_in_file() -> int:  # CRI log lines: "<time> stdout F <n> ..."; 0: not yet
        try:
            line, nl, _ = current.read_text().partition("\n")
        except FileNotFoundError:  # renamed, not yet reopened
            return 0
        return int(line.split(" ", 4)[3]) if nl else 0

    before = wait_for(first_in_file, 10, "a line in the current file")
    served = int(_get_text(node, f"/containerLogs/default/chatty-{NODE}/c").split(" ", 1)[0])
    after = wait_for(first_in_file, 10, "a line in the current file")
    assert served > 0  # the rotated lines are not served
    assert served in (before, after)  # the current file (a rotation may pass meanwhile)


def _fetch(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def test_host_port_on_127_0_0_1(node: Node) -> None:
    port = free_port()
    node.start()
    node.write_pod(
        "hp",
        pod_yaml(
            "hp",
            f"""\
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "mkdir /w && echo hello-hp > /w/index.html && httpd -f -p 80 -h /w"]
    ports: [{{containerPort: 80, hostPort: {port}}}]
""",
        ),
    )
    wait_for(lambda: "hello-hp" in _fetch(port), 60, "httpd on 127.0.0.1:hostPort")
    # route_localnet is on for the bridge: the localnet guard must be in place (CVE-2020-8558)
    check = subprocess.run(
        ["iptables", "-w", "5", "-t", "filter", "-C", "INPUT", *guard_rule()], capture_output=True
    )
    assert check.returncode == 0, check.stderr
    (node.pods / "hp.yaml").unlink()
    wait_for(lambda: not _fetch(port), 60, "the host port unmapped with the pod")
