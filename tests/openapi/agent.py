"""A running agent for the description walk and the client tests (fake runtime, in-process
so its routers can be read), with users granted exactly each documented attribute."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pykubelet.agent import Agent
from pykubelet.config import load_config
from pykubelet.core.clock import SystemClock
from pykubelet.runtime.fake import FakeRuntime
from pykubelet.server.openapi import load_description
from tests.conftest import free_port
from tests.openapi.checker import operations
from tests.server.harness import Pki, fetch, make_pki

DOC = load_description()
OPS = list(operations(DOC))
FULL = 10250


@dataclass(frozen=True)
class Target:
    agent: Agent
    pki: Pki
    ports: Mapping[int, int]  # described port -> bound port
    pod: Mapping[str, str]  # namespace, pod, uid, container
    tokens: Mapping[str, str]  # user -> bearer token
    # what `exec ... echo walk` prints: the fake runtime answers with its argv joined
    exec_stdout: bytes = b"echo walk"

    def ctx(self, admin: bool) -> ssl.SSLContext:
        return self.pki.client_context(self.pki.admin if admin else None)


def grant_user(verb: str, sub: str) -> str:
    return f"u-{verb or 'none'}-{sub}"


def _policy(grants: set[tuple[str, str]]) -> str:
    docs = [
        """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: admin}
rules: [{apiGroups: [""], resources: ["nodes", "nodes/*"], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:masters"}]"""
    ]
    for verb, sub in sorted(grants):
        user = grant_user(verb, sub)
        docs.append(
            f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {user}}}
rules: [{{apiGroups: [""], resources: ["nodes/{sub}"], verbs: ["{verb}"]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {user}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {user}}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]"""
        )
    return "\n---\n".join(docs) + "\n"


def _grants() -> set[tuple[str, str]]:
    return {(op.authz["verb"], op.authz["subresources"][0]) for op in OPS}


POD = """apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
  - {name: main, image: busybox}
"""


@contextlib.asynccontextmanager
async def running_agent(base: Path) -> AsyncIterator[Target]:
    """``pykubelet run`` as the CLI builds it, in-process on the fake runtime: TLS with the
    test PKI, tokens for every granted user, the Policy authorizer, a static pod ``web``."""
    pki = make_pki(base / "pki")
    users = {grant_user(v, s) for v, s in _grants()} | {"nobody"}
    tokens = {u: f"token-{u}" for u in users}
    token_file = base / "tokens.csv"
    token_file.write_text("".join(f"{t},{u},{u}\n" for u, t in tokens.items()))
    token_file.chmod(0o600)
    policy = base / "policy.yaml"
    policy.write_text(_policy(_grants()))
    manifests = base / "manifests"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(POD)
    ro_port, hz_port = free_port(), free_port()
    args = [
        "--runtime", "fake",
        "--root-dir", str(base / "root"),
        "--pod-manifest-path", str(manifests),
        "--node-name", "walk-node",
        "--address", "127.0.0.1",
        "--port", "0",
        "--read-only-port", str(ro_port),
        "--healthz-port", str(hz_port),
        "--cert-dir", str(base / "certs"),
        "--client-ca-file", pki.ca.cert_file,
        "--tls-cert-file", pki.serving.cert_file,
        "--tls-private-key-file", pki.serving.key_file,
        "--token-auth-file", str(token_file),
        "--authorization-mode", "Policy",
        "--authorization-policy-file", str(policy),
    ]  # fmt: skip
    agent = Agent(load_config(args), runtime=FakeRuntime(SystemClock()))
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.ready.wait(), 20)
        assert agent.servers is not None and agent.servers.full_port
        full = agent.servers.full_port
        pod = await _running_pod(full, pki)
        # the fake runtime writes no log: give the container a CRI log file of its own
        log_dir = base / "root" / "logs" / "pods" / f"default_web-walk-node_{pod['uid']}" / "main"
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "0.log").write_text("2026-01-02T03:04:05.000000001Z stdout F hello\n")
        await _until_ok(full, "/stats/summary", pki)
        yield Target(
            agent=agent,
            pki=pki,
            ports={FULL: full, 10255: ro_port, 10248: hz_port},
            pod=pod,
            tokens=tokens,
        )
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)


async def _running_pod(port: int, pki: Pki) -> dict[str, str]:
    async with asyncio.timeout(20):
        while True:
            r = await fetch(port, "/pods", ctx=pki.client_context(pki.admin))
            for item in json.loads(r.body)["items"] or []:
                statuses = item.get("status", {}).get("containerStatuses", [])
                if statuses and "running" in statuses[0].get("state", {}):
                    md = item["metadata"]
                    return {
                        "namespace": md["namespace"],
                        "pod": md["name"],
                        "uid": md["uid"],
                        "container": "main",
                    }
            await asyncio.sleep(0.05)


async def _until_ok(port: int, path: str, pki: Pki) -> None:
    async with asyncio.timeout(30):
        while True:
            if (await fetch(port, path, ctx=pki.client_context(pki.admin))).status == 200:
                return
            await asyncio.sleep(0.1)
