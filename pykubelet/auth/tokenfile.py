"""Static bearer tokens in kube-apiserver's ``--token-auth-file`` CSV format.

One record per line: ``token,user,uid[,"group1,group2"]`` (csv quoting; blank lines skipped;
extra columns ignored, as upstream). Deliberate differences from upstream, which only warns: an
empty token or a token listed twice is refused, naming the line — a typo in this file must not
silently change who can log in.

Tokens are stored as SHA-256 digests and looked up by the digest of the presented token, so the
comparison time does not depend on how much of a guess was right. The file is re-read when its
modification time or size changes (``reload_if_changed``), so tokens can be revoked without a
restart; a broken edit keeps the previous tokens and reports the error.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
from pathlib import Path

from pykubelet.auth.errors import TokenFileError
from pykubelet.auth.types import UserInfo

__all__ = ["StaticTokenFile", "parse_token_file"]

_log = logging.getLogger(__name__)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def parse_token_file(text: str, *, source: str = "token file") -> dict[bytes, UserInfo]:
    """Parse the CSV text into ``{sha256(token): user}``; raise ``TokenFileError`` naming the
    line and column that is wrong."""
    users: dict[bytes, UserInfo] = {}
    first_line: dict[bytes, int] = {}
    reader = csv.reader(io.StringIO(text), skipinitialspace=True, strict=True)
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not f.strip() for f in record):
                continue
            if len(record) < 3:
                raise TokenFileError(
                    f"{source}, line {line}: must have at least 3 columns "
                    f"(token, user name, user uid), found {len(record)}",
                    field="tokenFile",
                )
            token, name, uid = record[0], record[1], record[2]
            if not token:
                raise TokenFileError(
                    f"{source}, line {line}: column 1 (token) is empty", field="tokenFile"
                )
            if not name:
                raise TokenFileError(
                    f"{source}, line {line}: column 2 (user name) is empty", field="tokenFile"
                )
            key = _digest(token)
            if key in first_line:
                raise TokenFileError(
                    f"{source}, line {line}: duplicate token (first seen on line "
                    f"{first_line[key]})",
                    field="tokenFile",
                )
            groups: tuple[str, ...] = ()
            if len(record) >= 4 and record[3]:
                groups = tuple(g for g in record[3].split(","))
            first_line[key] = line
            users[key] = UserInfo(name=name, uid=uid, groups=groups)
    except csv.Error as exc:
        raise TokenFileError(f"{source}, line {reader.line_num}: {exc}", field="tokenFile") from exc
    return users


# what tells a changed file: (mtime in ns, size, inode); checked on every request, so cheap
_Stamp = tuple[int, int, int]


def _stamp(path: str) -> _Stamp:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size, st.st_ino


class StaticTokenFile:
    """A ``TokenAuthenticator`` backed by a token file; refuses to start on a bad file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._path_str = str(self.path)
        self._users, self._stamp = self._load()

    def _load(self) -> tuple[dict[bytes, UserInfo], _Stamp]:
        try:
            stamp = _stamp(self._path_str)
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(
                f"cannot read token file {self.path}: {exc}", field="tokenFile"
            ) from exc
        return parse_token_file(text, source=str(self.path)), stamp

    def __len__(self) -> int:
        return len(self._users)

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed; ``True`` when new tokens are in force. A broken or
        missing file keeps the tokens already loaded (logged), never an empty set by accident."""
        try:
            if _stamp(self._path_str) == self._stamp:
                return False
            self._users, self._stamp = self._load()
        except (OSError, TokenFileError) as exc:
            _log.error("keeping previous tokens: %s", exc)
            return False
        _log.info("reloaded %d tokens from %s", len(self._users), self.path)
        return True

    async def authenticate_token(self, token: str) -> UserInfo | None:
        self.reload_if_changed()
        return self._users.get(_digest(token))
