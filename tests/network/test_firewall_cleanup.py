"""firewall_left_as_found: what host ports leave on purpose is removed when it was not there."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

from devtools.firewall_cleanup import firewall_left_as_found
from pykubelet.network.localnet import GUARD_COMMENT, LocalnetGuard
from tests.prereq import require, require_root


def _guard_rules() -> int:
    out = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True)
    return sum(GUARD_COMMENT in line for line in out.stdout.splitlines())


def test_the_guard_rule_added_inside_is_gone_after_unless_it_was_there() -> None:
    require_root()
    require(shutil.which("iptables") is not None, "needs iptables (Debian package iptables)")
    before = _guard_rules()
    with firewall_left_as_found():
        asyncio.run(LocalnetGuard().ensure())
        assert _guard_rules() == 1
    assert _guard_rules() == before  # removed only if this test added it
