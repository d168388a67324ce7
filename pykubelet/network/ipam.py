"""In-process address management for the built-in network: one small file per held address.

``<directory>/<address>`` holds the sandbox id, as host-local's store does. The file is created
with ``O_EXCL`` before the address is used anywhere, so an agent that restarts (even after
SIGKILL) reads back every address a live pod may hold and never hands it out twice; the page
cache survives a killed process, so no fsync is paid per pod. A file left empty by a crash
between create and write has no known holder: ``holders()`` reports it under ``""`` and the
start-up sweep releases it. Blocking (file I/O) and thread-safe: callers run it in worker threads.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from pathlib import Path

from pykubelet.network.types import AddressPoolExhausted, NetworkError

__all__ = ["AddressPool"]


class AddressPool:
    def __init__(self, directory: Path, subnet: ipaddress.IPv4Network) -> None:
        if subnet.prefixlen > 30:
            raise ValueError(f"subnet {subnet} is too small: at least a /30 is needed")
        self._dir = directory
        self._subnet = subnet
        self.gateway = next(subnet.hosts())
        self._lock = threading.Lock()
        self._by_address: dict[str, str] | None = None  # address -> sandbox id, loaded lazily
        self._by_sandbox: dict[str, str] = {}

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return self._subnet

    def _load(self) -> dict[str, str]:
        if self._by_address is not None:
            return self._by_address
        held: dict[str, str] = {}
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            with os.scandir(self._dir) as entries:
                names = [e.name for e in entries]
        except OSError as e:
            raise NetworkError(f"address store {self._dir}: {e.strerror}") from e
        for name in names:
            try:
                ipaddress.IPv4Address(name)
            except ValueError:
                continue  # not an address record
            try:
                held[name] = (self._dir / name).read_text().strip()
            except OSError:
                held[name] = ""
        self._by_address = held
        self._by_sandbox = {sid: addr for addr, sid in held.items() if sid}
        return held

    def allocate(self, sandbox_id: str) -> str:
        """The address ``sandbox_id`` holds, or the lowest free one, recorded on disk."""
        with self._lock:
            held = self._load()
            mine = self._by_sandbox.get(sandbox_id)
            if mine is not None:
                return mine
            for candidate in self._subnet.hosts():
                if candidate == self.gateway:
                    continue
                addr = str(candidate)
                if addr in held:
                    continue
                if self._claim(addr, sandbox_id):
                    held[addr] = sandbox_id
                    self._by_sandbox[sandbox_id] = addr
                    return addr
            raise AddressPoolExhausted(
                f"no free address in {self._subnet} for sandbox {sandbox_id} "
                f"({len(held)} held, gateway {self.gateway})"
            )

    def _claim(self, addr: str, sandbox_id: str) -> bool:
        path = self._dir / addr
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            # another writer of this store took it: record and skip it
            assert self._by_address is not None
            try:
                self._by_address[addr] = path.read_text().strip()
            except OSError:
                self._by_address[addr] = ""
            return False
        except OSError as e:
            raise NetworkError(f"record address {addr} in {self._dir}: {e.strerror}") from e
        try:
            os.write(fd, sandbox_id.encode() + b"\n")
        except OSError as e:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise NetworkError(f"record address {addr} in {self._dir}: {e.strerror}") from e
        os.close(fd)
        return True

    def release(self, sandbox_id: str) -> str | None:
        """Forget what ``sandbox_id`` holds; returns the address. Idempotent."""
        with self._lock:
            held = self._load()
            addr = self._by_sandbox.pop(sandbox_id, None)
            if addr is None:
                return None
            self._forget(held, addr)
            return addr

    def release_address(self, addr: str) -> None:
        """Forget ``addr`` whoever holds it (for records without a known holder)."""
        with self._lock:
            held = self._load()
            sid = held.get(addr)
            if sid:
                self._by_sandbox.pop(sid, None)
            self._forget(held, addr)

    def _forget(self, held: dict[str, str], addr: str) -> None:
        try:
            (self._dir / addr).unlink(missing_ok=True)
        except OSError as e:
            raise NetworkError(f"release address {addr} in {self._dir}: {e.strerror}") from e
        held.pop(addr, None)

    def holders(self) -> dict[str, str]:
        """address -> sandbox id ("" when unknown) of every record."""
        with self._lock:
            return dict(self._load())

    def address_of(self, sandbox_id: str) -> str | None:
        with self._lock:
            self._load()
            return self._by_sandbox.get(sandbox_id)
