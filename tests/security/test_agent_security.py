"""The agent as `pykubelet run` builds it: config → tokens, policy, audit, warning block."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from pykubelet.agent import Agent
from pykubelet.auth.errors import PolicyFileError, TokenFileError
from pykubelet.config import load_config
from pykubelet.core.clock import SystemClock
from pykubelet.runtime.fake import FakeRuntime
from pykubelet.security.setup import build_security
from tests.server.harness import Pki, fetch


def args(tmp_path: Path, pki: Pki, *extra: str) -> list[str]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("admin-token,root,1,system:masters\nuser-token,eve,2\n")
    tokens.chmod(0o600)
    return [
        "--runtime", "fake",
        "--root-dir", str(tmp_path / "root"),
        "--address", "127.0.0.1",
        "--port", "0",
        "--healthz-port", "0",
        "--node-name", "n1",
        "--cert-dir", str(tmp_path / "pki"),
        "--client-ca-file", pki.ca.cert_file,
        "--tls-cert-file", pki.serving.cert_file,
        "--tls-private-key-file", pki.serving.key_file,
        "--token-auth-file", str(tokens),
        "--audit-log-path", str(tmp_path / "audit" / "audit.log"),
        *extra,
    ]  # fmt: skip


async def test_agent_serves_with_tokens_policy_and_audit(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    agent = Agent(load_config(args(tmp_path, pki)), runtime=FakeRuntime(SystemClock()))
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.ready.wait(), 10)
        assert agent.servers is not None and agent.servers.full_port is not None
        port = agent.servers.full_port
        ctx = pki.client_context(None)
        admin = await fetch(port, "/pods", ctx=ctx, headers={"Authorization": "Bearer admin-token"})
        assert admin.status == 200
        eve = await fetch(port, "/pods", ctx=ctx, headers={"Authorization": "Bearer user-token"})
        assert eve.status == 403  # the default policy: system:masters only
        anon = await fetch(port, "/pods", ctx=ctx)
        assert anon.status == 401
    finally:
        agent.stop()
        await asyncio.wait_for(task, 10)
    # Stopping flushed the audit writer: all three requests are there.
    lines = (tmp_path / "audit" / "audit.log").read_text().splitlines()
    users = [json.loads(x)["user"].get("username") for x in lines]
    assert users == ["root", "eve", None]
    assert "SECURITY WARNING" not in caplog.text  # nothing exposed


async def test_insecure_choices_start_with_one_warning_block(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    extra = ("--anonymous-auth=true", "--authorization-mode", "AlwaysAllow")
    agent = Agent(load_config(args(tmp_path, pki, *extra)), runtime=FakeRuntime(SystemClock()))
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.ready.wait(), 10)
    finally:
        agent.stop()
        await asyncio.wait_for(task, 10)
    blocks = [r.getMessage() for r in caplog.records if "SECURITY WARNING" in r.getMessage()]
    assert len(blocks) == 1
    assert "anonymous-auth" in blocks[0] and "always-allow" in blocks[0]


def test_bad_token_or_policy_file_stops_the_start(tmp_path: Path, pki: Pki) -> None:
    cfg = load_config(args(tmp_path, pki))
    (tmp_path / "tokens.csv").write_text("only,two\n")
    with pytest.raises(TokenFileError, match="line 1"):
        build_security(cfg)
    (tmp_path / "tokens.csv").write_text("t,u,1\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n")
    cfg = load_config([*args(tmp_path, pki), "--authorization-policy-file", str(policy)])
    with pytest.raises(PolicyFileError, match="document 1: kind"):
        build_security(cfg)
    # A named policy file must exist; the default location may be absent (built-in default).
    cfg = load_config(
        [*args(tmp_path, pki), "--authorization-policy-file", str(tmp_path / "nope.yaml")]
    )
    with pytest.raises(PolicyFileError, match="cannot read policy file"):
        build_security(cfg)
    assert build_security(load_config(args(tmp_path, pki))).audit_log is not None
