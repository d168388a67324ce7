"""A throwaway PKI for tests: a CA and certificates for 127.0.0.1 servers and clients, issued by
the project's own ``pykubelet.security.certs`` (valid for a day)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pykubelet.security.certs import create_ca, create_cert

__all__ = ["CA", "Pair"]


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


class CA:
    def __init__(self, directory: Path, name: str = "test-ca") -> None:
        self.dir = directory
        self._pair = create_ca(str(directory), common_name=name, days=1)
        self.cert_path = Path(self._pair.cert_file)

    def issue(
        self,
        stem: str,
        *,
        cn: str,
        orgs: tuple[str, ...] = (),
        server: bool = False,
        client: bool = True,
    ) -> Pair:
        pair = create_cert(
            str(self.dir),
            stem,
            ca=self._pair,
            common_name=cn,
            organizations=orgs,
            server=server,
            client=client,
            days=1,
        )
        return Pair(cert=Path(pair.cert_file), key=Path(pair.key_file))
