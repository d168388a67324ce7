"""Registry authentication, sans IO: read a ``WWW-Authenticate`` challenge and say what to send.

The distribution spec's two schemes: ``Basic`` (answer with the credentials) and ``Bearer``
(fetch a token from the challenge's realm, with the credentials as basic auth or, for an
identity token, as an OAuth2 refresh token, then send the token).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from pykubelet.runtime.errors import ImagePullError
from pykubelet.runtime.types import RegistryAuth

__all__ = ["Challenge", "TokenRequest", "basic_header", "parse_challenge", "token_request"]

_PARAM = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower case
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRequest:
    """GET ``url`` with ``query`` (and ``authorization`` when set), or POST ``form``."""

    url: str
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None
    authorization: str = ""


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return Challenge(scheme=scheme.lower(), params=params)


def _user_password(auth: RegistryAuth) -> tuple[str, str] | None:
    if auth.username or auth.password:
        return auth.username, auth.password
    if auth.auth:
        try:
            user, sep, password = base64.b64decode(auth.auth, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as e:
            raise ImagePullError("registry credentials: auth is not base64 of user:password") from e
        if not sep:
            raise ImagePullError("registry credentials: auth is not base64 of user:password")
        return user, password
    return None


def basic_header(auth: RegistryAuth | None) -> str:
    """``Basic ...`` for the credentials, or "" when there are none."""
    pair = _user_password(auth) if auth is not None else None
    if pair is None:
        return ""
    return "Basic " + base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode()


def token_request(challenge: Challenge, scope: str, auth: RegistryAuth | None) -> TokenRequest:
    """How to get a bearer token for ``scope`` (``repository:<name>:pull``)."""
    realm = challenge.params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise ImagePullError(f"registry: bearer challenge without a usable realm: {realm!r}")
    service = challenge.params.get("service", "")
    if auth is not None and auth.identity_token:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": auth.identity_token,
            "service": service,
            "scope": scope,
            "client_id": "pykubelet",
        }
        return TokenRequest(url=realm, form=form)
    query = {"scope": scope}
    if service:
        query["service"] = service
    return TokenRequest(url=realm, query=query, authorization=basic_header(auth))
