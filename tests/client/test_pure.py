"""The client's pure parts, row by row: durations, pod STATUS, exit statuses, port pairs,
kubeconfig precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pykubelet.client.config import ConnectionFlags, resolve_connection
from pykubelet.client.errors import ConfigError, ServerError, UsageError
from pykubelet.client.forward import PortPair, parse_port_pairs
from pykubelet.client.status import exec_outcome
from pykubelet.client.tables import format_table, human_duration, pod_row


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (121, "2m1s"),
        (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"),
        (49 * 3600, "2d1h"), (8 * 86400, "8d"), (729 * 86400, "729d"),
        (730 * 86400, "2y"), (731 * 86400, "2y1d"), (8 * 365 * 86400, "8y"),
    ],
)  # fmt: skip
def test_human_duration_matches_apimachinery(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def _pod(status: dict[str, object], **spec: object) -> dict[str, object]:
    return {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "a"}], **spec},
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Running", "containerStatuses": [{"ready": True, "restartCount": 2,
          "state": {"running": {}}}]}, ["1/1", "Running", "2"]),
        ({"phase": "Running", "containerStatuses": [{"ready": False, "restartCount": 5,
          "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
         ["0/1", "CrashLoopBackOff", "5"]),
        ({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]},
         ["0/1", "ExitCode:3", "0"]),
        ({"phase": "Pending", "initContainerStatuses": [{"state": {"running": {}}}]},
         ["0/1", "Init:0/1", "0"]),
        ({"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {
          "exitCode": 0, "reason": "Completed"}}}]}, ["0/1", "Completed", "0"]),
    ],
)  # fmt: skip
def test_pod_row_columns_as_kubectl(status: dict[str, object], expected: list[str]) -> None:
    import datetime

    row = pod_row(_pod(status), datetime.datetime.now(datetime.UTC), wide=False)
    assert row[1:4] == expected
    assert row[4] == "<unknown>"  # no creationTimestamp nor startTime


def test_table_columns_three_spaces_apart() -> None:
    assert format_table(["A", "BB"], [["xyz", "1"]]) == "A     BB\nxyz   1\n"


def test_exec_outcomes_from_the_error_channel() -> None:
    ok = exec_outcome(b'{"metadata":{},"status":"Success"}', json_status=True)
    assert (ok.exit_code, ok.message) == (0, "")
    failed = json.dumps(
        {
            "metadata": {},
            "status": "Failure",
            "message": "command terminated with non-zero exit code: exit status 300",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "300"}]},
        }
    ).encode()
    out = exec_outcome(failed, json_status=True)
    assert (out.exit_code, out.message) == (300 & 0xFF, "command terminated with exit code 300")
    internal = exec_outcome(
        b'{"metadata":{},"status":"Failure","message":"boom","reason":"InternalError"}',
        json_status=True,
    )
    assert (internal.exit_code, internal.message) == (1, "boom")
    assert exec_outcome(b"", json_status=False).exit_code == 0
    legacy = exec_outcome(b"command terminated with non-zero exit code", json_status=False)
    assert legacy.exit_code == 1


def test_port_pairs_in_kubectls_forms() -> None:
    assert parse_port_pairs(["8080:80", "443", ":53"]) == [
        PortPair(local=8080, remote=80),
        PortPair(local=443, remote=443),
        PortPair(local=0, remote=53),
    ]
    for bad in ("x:80", "80:0", "70000", "80:"):
        with pytest.raises(UsageError, match="invalid port"):
            parse_port_pairs([bad])


def test_flags_win_over_the_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ca.pem").write_text("not a pem but bytes\n")
    kc = tmp_path / "config"
    kc.write_text(
        "current-context: c\n"
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: team}}]\n"
        "clusters: [{name: k, cluster: {server: 'https://node:10250',"
        " certificate-authority: ca.pem}}]\n"
        "users: [{name: u, user: {token: from-file}}]\n"
    )
    conn = resolve_connection(ConnectionFlags(kubeconfig=str(kc)))
    assert (conn.server, conn.token, conn.namespace) == ("https://node:10250", "from-file", "team")
    assert conn.ca_pem == b"not a pem but bytes\n"  # relative to the kubeconfig's folder
    over = resolve_connection(
        ConnectionFlags(kubeconfig=str(kc), server="h:1", token="t", namespace="n")
    )
    assert (over.server, over.token, over.namespace) == ("https://h:1", "t", "n")
    with pytest.raises(UsageError, match="no kubelet to talk to"):
        resolve_connection(ConnectionFlags())
    with pytest.raises(UsageError, match="insecure flag is not allowed"):
        resolve_connection(
            ConnectionFlags(
                server="h", certificate_authority=str(tmp_path / "ca.pem"),
                insecure_skip_tls_verify=True,
            )
        )  # fmt: skip
    with pytest.raises(ConfigError, match="cannot read --client-key"):
        resolve_connection(ConnectionFlags(server="h", client_key=str(tmp_path / "nope")))


def test_server_errors_render_like_kubectl() -> None:
    assert ServerError(403, "Forbidden (user=x)").render() == (
        "Error from server (Forbidden): Forbidden (user=x)"
    )
    assert (
        ServerError(422, '{"message": "Invalid request."}')
        .render()
        .startswith("Error from server (Invalid): ")
    )
