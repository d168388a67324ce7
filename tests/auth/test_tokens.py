"""Static token file, ``Authorization: Bearer`` and the WebSocket token subprotocol."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pykubelet.auth.bearer import (
    INVALID_TOKEN,
    BearerAuthenticator,
    UnionTokenAuthenticator,
    bearer_token,
)
from pykubelet.auth.errors import TokenFileError, WebhookError
from pykubelet.auth.tokenfile import StaticTokenFile, parse_token_file
from pykubelet.auth.types import RequestInfo, UserInfo
from pykubelet.auth.websocket_token import (
    PROTOCOL_PREFIX,
    WebSocketTokenAuthenticator,
    encode_token_protocol,
)

TOKENS = """\
s3cret-admin,alice,uid-1,"system:masters,ops"
stats-only,bob,uid-2,stats-readers

"with,comma",carol,uid-3
  spaced,dave,uid-4,
"""


def req(headers: dict[str, str]) -> RequestInfo:
    return RequestInfo(method="GET", path="/pods", headers=headers, remote_addr="127.0.0.1")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "tokens.csv"
    p.write_text(text)
    os.chmod(p, 0o600)
    return p


class TestTokenFile:
    async def test_records_map_to_users_with_groups(self, tmp_path: Path) -> None:
        tf = StaticTokenFile(write(tmp_path, TOKENS))
        assert len(tf) == 4
        assert await tf.authenticate_token("s3cret-admin") == UserInfo(
            name="alice", uid="uid-1", groups=("system:masters", "ops")
        )
        assert await tf.authenticate_token("stats-only") == UserInfo(
            name="bob", uid="uid-2", groups=("stats-readers",)
        )
        carol = await tf.authenticate_token("with,comma")
        assert carol is not None and carol.name == "carol" and carol.groups == ()
        dave = await tf.authenticate_token("spaced")  # leading space trimmed, as Go's csv
        assert dave is not None and dave.name == "dave"
        assert await tf.authenticate_token("nope") is None
        assert await tf.authenticate_token("s3cret-admin ") is None

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("tok,user\n", "line 1: must have at least 3 columns"),
            ("a,b,c\nx,y\n", "line 2: must have at least 3 columns (token, user name, user uid)"),
            (",user,uid\n", "line 1: column 1 (token) is empty"),
            ("tok,,uid\n", "line 1: column 2 (user name) is empty"),
            ("t,a,1\nu,b,2\nt,c,3\n", "line 3: duplicate token (first seen on line 1)"),
            ('t,"unterminated,1\n', "line"),
        ],
    )
    def test_bad_files_name_the_line(self, text: str, message: str) -> None:
        with pytest.raises(TokenFileError) as exc:
            parse_token_file(text, source="tokens.csv")
        assert message in str(exc.value)
        assert "tokens.csv" in str(exc.value)
        assert exc.value.field == "tokenFile"

    def test_missing_file_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(TokenFileError, match="cannot read token file"):
            StaticTokenFile(tmp_path / "absent.csv")

    async def test_reload_on_change_and_keep_old_tokens_on_a_broken_edit(
        self, tmp_path: Path
    ) -> None:
        path = write(tmp_path, "old,alice,1\n")
        tf = StaticTokenFile(path)
        assert await tf.authenticate_token("old") is not None
        path.write_text("new,alice,1\nlonger-line-so-size-changes,bob,2\n")
        assert await tf.authenticate_token("old") is None  # revoked without a restart
        assert await tf.authenticate_token("new") is not None
        path.write_text("broken\n")
        assert await tf.authenticate_token("new") is not None  # previous tokens kept


class TestBearer:
    @pytest.mark.parametrize(
        ("value", "token"),
        [
            ("Bearer abc", "abc"),
            ("bearer abc", "abc"),
            ("BEARER abc", "abc"),
            ("  Bearer abc  ", "abc"),
            ("Bearer abc def", "abc"),
            ("Bearer  abc", ""),  # empty token after a double space: ignored as upstream
            ("Bearer", ""),
            ("Basic dXNlcjpwYXNz", ""),
            ("", ""),
        ],
    )
    def test_header_parsing(self, value: str, token: str) -> None:
        assert bearer_token(value) == token

    async def test_outcomes(self, tmp_path: Path) -> None:
        auth = BearerAuthenticator(StaticTokenFile(write(tmp_path, TOKENS)))
        ok = await auth.authenticate(req({"authorization": "Bearer s3cret-admin"}))
        assert ok is not None and ok.user is not None and ok.user.name == "alice"
        assert ok.consumed_headers == ("authorization",)
        bad = await auth.authenticate(req({"authorization": "Bearer wrong"}))
        assert bad is not None and bad.user is None and bad.error == INVALID_TOKEN
        assert bad.consumed_headers == ()
        assert await auth.authenticate(req({})) is None
        assert await auth.authenticate(req({"authorization": "Basic Zm9vOmJhcg=="})) is None
        assert await auth.authenticate(req({"authorization": "Bearer "})) is None

    async def test_union_first_user_wins_and_errors_surface_only_when_nobody_knows(
        self, tmp_path: Path
    ) -> None:
        class Failing:
            calls = 0

            async def authenticate_token(self, token: str) -> UserInfo | None:
                Failing.calls += 1
                raise WebhookError("webhook down")

        tf = StaticTokenFile(write(tmp_path, TOKENS))
        union = UnionTokenAuthenticator([tf, Failing()])
        user = await union.authenticate_token("stats-only")
        assert user is not None and user.name == "bob" and Failing.calls == 0
        with pytest.raises(WebhookError):
            await union.authenticate_token("unknown")
        result = await BearerAuthenticator(union).authenticate(
            req({"authorization": "Bearer unknown"})
        )
        assert result is not None and result.user is None and "webhook down" in result.error


class TestWebSocketToken:
    def ws(self, protocols: str, **extra: str) -> RequestInfo:
        headers = {"connection": "Upgrade", "upgrade": "websocket"}
        headers["sec-websocket-protocol"] = protocols
        headers.update(extra)
        return req(headers)

    def auth(self, tmp_path: Path) -> WebSocketTokenAuthenticator:
        return WebSocketTokenAuthenticator(StaticTokenFile(write(tmp_path, TOKENS)))

    def test_encoding_is_base64url_without_padding(self) -> None:
        assert encode_token_protocol("s3cret-admin") == PROTOCOL_PREFIX + "czNjcmV0LWFkbWlu"
        assert "=" not in encode_token_protocol("ab")

    async def test_token_entry_is_stripped_and_others_kept(self, tmp_path: Path) -> None:
        protocols = f"v4.channel.k8s.io, {encode_token_protocol('s3cret-admin')}, channel.k8s.io"
        res = await self.auth(tmp_path).authenticate(self.ws(protocols))
        assert res is not None and res.user is not None and res.user.name == "alice"
        assert res.rewritten_headers == (
            ("sec-websocket-protocol", "v4.channel.k8s.io, channel.k8s.io"),
        )

    async def test_error_outcomes(self, tmp_path: Path) -> None:
        a = self.auth(tmp_path)
        tok = encode_token_protocol("s3cret-admin")
        cases = {
            f"v4.channel.k8s.io, {tok}, {tok}": "multiple base64.bearer.authorization tokens",
            f"v4.channel.k8s.io, {PROTOCOL_PREFIX}!!!": "invalid base64.bearer",
            f"v4.channel.k8s.io, {PROTOCOL_PREFIX}YQ==": "invalid base64.bearer",
            tok: "missing additional subprotocol",
            f"v4.channel.k8s.io, {encode_token_protocol('wrong')}": INVALID_TOKEN,
        }
        for protocols, message in cases.items():
            res = await a.authenticate(self.ws(protocols))
            assert res is not None and res.user is None, protocols
            assert message in res.error, protocols

    async def test_no_opinion_without_token_or_without_websocket(self, tmp_path: Path) -> None:
        a = self.auth(tmp_path)
        assert await a.authenticate(self.ws("v4.channel.k8s.io")) is None
        tok = encode_token_protocol("s3cret-admin")
        plain = req({"sec-websocket-protocol": f"v4.channel.k8s.io, {tok}"})
        assert await a.authenticate(plain) is None  # not a WebSocket upgrade
