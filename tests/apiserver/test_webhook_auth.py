"""Webhook authentication (TokenReview) and authorization (SubjectAccessReview) against a real
kube-apiserver v1.20.2, with the upstream flags and the node's kubeconfig.

Who may do what is decided by the API server's RBAC, never by pykubelet: a ServiceAccount bound to
``get nodes/proxy`` reads /pods but may not exec (``create``), one bound to ``get nodes/stats``
reads /stats/summary only, and the API server's kubelet client certificate (system:masters) may
do everything.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from tests.apiserver.controlplane import ControlPlane, wait_until
from tests.apiserver.kubelet import KubeletClient, node_credentials, start_kubelet
from tests.e2e.node import Node
from tests.prereq import require_root

pytestmark = pytest.mark.root

AUTHN_TTL_S = 3  # --authentication-token-webhook-cache-ttl for this node (upstream: 2m)
DENIED_TTL_S = 6  # --authorization-webhook-cache-unauthorized-ttl for this node (upstream: 30s)
TOKENS_USED: list[str] = []  # every credential sent to the node: none may appear in its logs
EXEC = "/exec/default/nopod/c?command=true&output=1"


@pytest.fixture(scope="module")
def kubelet(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Node, KubeletClient]]:
    require_root()
    base = tmp_path_factory.mktemp("webhook-node")
    kc = node_credentials(control_plane, base)
    node = start_kubelet(
        control_plane,
        base,
        "--kubeconfig",
        str(kc),
        "--authentication-token-webhook",
        f"--authentication-token-webhook-cache-ttl={AUTHN_TTL_S}s",
        "--authorization-mode",
        "Webhook",
        f"--authorization-webhook-cache-unauthorized-ttl={DENIED_TTL_S}s",
        "--audit-log-path",
        str(base / "audit.log"),
    )
    try:
        yield node, KubeletClient(node.port, node.ca.cert_file)
    finally:
        node.cleanup()


def _sa(cp: ControlPlane, resource: str) -> tuple[str, str]:
    """A ServiceAccount allowed ``get`` on ``resource`` (e.g. nodes/proxy): name and token."""
    name = f"{resource.replace('/', '-')}-{secrets.token_hex(3)}"
    token = cp.service_account_token("default", name)
    cp.grant(
        name,
        [{"apiGroups": [""], "resources": [resource], "verbs": ["get"]}],
        {"kind": "ServiceAccount", "name": name, "namespace": "default"},
    )
    TOKENS_USED.append(token)
    return name, token


def test_nodes_proxy_reads_pods_but_may_not_exec(
    control_plane: ControlPlane, kubelet: tuple[Node, KubeletClient]
) -> None:
    _, api = kubelet
    _, token = _sa(control_plane, "nodes/proxy")
    pods = api.call("GET", "/pods", token=token)
    assert pods.status == 200, pods.body
    assert json.loads(pods.body)["kind"] == "PodList"
    exec_ = api.call("POST", EXEC, token=token)
    assert exec_.status == 403, exec_.body
    assert b"verb=create, resource=nodes, subresource=proxy)" in exec_.body
    assert api.call("GET", "/stats/summary", token=token).status == 403


def test_nodes_stats_reads_the_summary_only(
    control_plane: ControlPlane, kubelet: tuple[Node, KubeletClient]
) -> None:
    _, api = kubelet
    _, token = _sa(control_plane, "nodes/stats")
    summary = api.call("GET", "/stats/summary", token=token)
    assert summary.status == 200, summary.body
    assert "node" in json.loads(summary.body)
    assert api.call("GET", "/pods", token=token).status == 403
    assert api.call("GET", "/metrics", token=token).status == 403  # nodes/metrics
    assert api.call("POST", EXEC, token=token).status == 403


def test_an_unknown_token_is_401(kubelet: tuple[Node, KubeletClient]) -> None:
    _, api = kubelet
    assert api.call("GET", "/pods", token="not-a-token").status == 401


def test_the_api_servers_kubelet_client_certificate_may_do_everything(
    control_plane: ControlPlane, kubelet: tuple[Node, KubeletClient]
) -> None:
    _, api = kubelet
    cert = control_plane.kubelet_client
    for path in ("/pods", "/stats/summary", "/metrics", "/metrics/cadvisor", "/configz"):
        answer = api.call("GET", path, cert=cert)
        assert answer.status == 200, (path, answer.body)
    # authorized: the exec gets past the front door to the (absent) pod
    answer = api.call("POST", EXEC, cert=cert)
    assert answer.status == 404, answer.body


def test_a_revoked_token_stops_working_within_the_cache_ttl(
    control_plane: ControlPlane, kubelet: tuple[Node, KubeletClient]
) -> None:
    _, api = kubelet
    name, token = _sa(control_plane, "nodes/proxy")
    assert api.call("GET", "/pods", token=token).status == 200
    control_plane.delete(f"/api/v1/namespaces/default/serviceaccounts/{name}")
    # the answer is cached for AUTHN_TTL_S; afterwards the API server says the token is gone
    wait_until(
        lambda: api.call("GET", "/pods", token=token).status == 401,
        AUTHN_TTL_S + 30,
        "the revoked token to be refused",
        interval_s=0.5,
    )


def test_a_new_grant_is_seen_once_the_cached_denial_expires(
    control_plane: ControlPlane, kubelet: tuple[Node, KubeletClient]
) -> None:
    """Denials are cached for cacheUnauthorizedTTL (this node's flag), then asked again: RBAC
    granted afterwards takes effect within that time."""
    _, api = kubelet
    name = f"late-{secrets.token_hex(3)}"
    token = control_plane.service_account_token("default", name)
    TOKENS_USED.append(token)
    assert api.call("GET", "/pods", token=token).status == 403
    control_plane.grant(
        name,
        [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}],
        {"kind": "ServiceAccount", "name": name, "namespace": "default"},
    )
    wait_until(
        lambda: api.call("GET", "/pods", token=token).status == 200,
        DENIED_TTL_S + 30,
        "the grant to be seen",
        interval_s=0.5,
    )


def test_the_api_server_down_gives_quick_refusals_not_hangs(
    control_plane: ControlPlane, kubelet: tuple[Node, KubeletClient]
) -> None:
    """Upstream's retry (5 steps from 500 ms, x1.5) bounds the wait; then an unknown token is
    401 and an uncached decision for a certificate user is 500 ``Authorization error``, as the
    Go kubelet answers; cached decisions keep working."""
    node, api = kubelet
    _, token = _sa(control_plane, "nodes/proxy")
    cert = control_plane.kubelet_client
    assert api.call("GET", "/pods", cert=cert).status == 200  # cached: allowed for 5 min
    control_plane.stop_apiserver()
    try:
        refused = api.call("GET", "/pods", token=token, timeout_s=60)
        assert refused.status == 401, refused.body
        uncached = api.call("GET", "/logs/", cert=cert, timeout_s=60)  # nodes/log: not asked yet
        assert uncached.status == 500, uncached.body
        assert uncached.body.startswith(b"Authorization error"), uncached.body
        assert api.call("GET", "/pods", cert=cert).status == 200
        print(
            f"API server down: 401 after {refused.elapsed_s:.2f}s, "
            f"500 after {uncached.elapsed_s:.2f}s"
        )
    finally:
        control_plane.start_apiserver()
    assert node.proc is not None and node.proc.poll() is None


def test_credentials_are_never_logged(kubelet: tuple[Node, KubeletClient]) -> None:
    """Run last in this module: the agent's log and audit log after every request above
    (valid, revoked and unknown tokens; the API server up and down) hold none of them, nor the
    node's private key."""
    node, api = kubelet
    assert api.call("GET", "/pods", token="not-a-token").status == 401
    assert len(TOKENS_USED) >= 4
    audit = (node.base / "audit.log").read_text()
    assert '"user":{"username":"system:serviceaccount:default:nodes-proxy-' in audit.replace(
        " ", ""
    )
    for where, text in (("agent log", node.log()), ("audit log", audit)):
        for token in [*TOKENS_USED, "not-a-token"]:
            assert token not in text, f"a bearer token in the {where}"
            assert token.split(".")[-1] not in text, f"a token signature in the {where}"
        assert "PRIVATE KEY" not in text
