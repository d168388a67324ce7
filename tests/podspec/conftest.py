"""The end-to-end node fixtures are shared with tests/e2e (a real ``pykubelet run``)."""

from tests.e2e.conftest import busybox_tar, node

__all__ = ["busybox_tar", "node"]
