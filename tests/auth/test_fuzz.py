"""Whatever the file says, the parsers answer with a value or their own error, nothing else."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pykubelet.auth.errors import PolicyFileError, TokenFileError
from pykubelet.auth.policy import parse_policy
from pykubelet.auth.tokenfile import parse_token_file
from pykubelet.auth.types import RequestInfo, UserInfo
from pykubelet.auth.websocket_token import WebSocketTokenAuthenticator

_csv_chars = st.sampled_from(list('ab,"\n\r \t=|x1\\'))


@settings(max_examples=300, deadline=None)
@given(st.text(_csv_chars, max_size=80) | st.text(max_size=80))
def test_token_file_parser_total(text: str) -> None:
    try:
        users = parse_token_file(text)
    except TokenFileError as exc:
        assert "line" in str(exc)
    else:
        assert all(isinstance(u, UserInfo) and u.name for u in users.values())


_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_docs = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["rbac.authorization.k8s.io/v1", "v1", 3]),
        "kind": st.sampled_from(["ClusterRole", "ClusterRoleBinding", "List", "Role"]),
    },
    optional={
        "metadata": _values | st.fixed_dictionaries({"name": st.sampled_from(["a", "b", ""])}),
        "rules": _values,
        "roleRef": _values
        | st.fixed_dictionaries({"kind": st.just("ClusterRole"), "name": st.just("a")}),
        "subjects": _values,
        "items": _values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_docs | _values, max_size=3))
def test_policy_parser_total(docs: list[object]) -> None:
    text = yaml.safe_dump_all(docs)
    try:
        parse_policy(text, source="fuzz.yaml")
    except PolicyFileError as exc:
        assert "fuzz.yaml" in str(exc)


class _Nobody:
    async def authenticate_token(self, token: str) -> UserInfo | None:
        return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
async def test_websocket_protocol_header_total(header: str) -> None:
    auth = WebSocketTokenAuthenticator(_Nobody())
    req = RequestInfo(
        method="GET",
        path="/exec/a/b/c",
        headers={"connection": "upgrade", "upgrade": "websocket", "sec-websocket-protocol": header},
    )
    res = await auth.authenticate(req)
    assert res is None or (res.user is None and res.error)
