#!/usr/bin/env python3
"""Write docs/api-reference.md from the shipped OpenAPI description (--check: fail if stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from pykubelet.server.openapi import load_description
from pykubelet.server.openapi.reference import render_reference

PAGE = Path(__file__).resolve().parent.parent / "docs" / "api-reference.md"


def main(argv: list[str]) -> int:
    text = render_reference(load_description())
    if argv[1:] == ["--check"]:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: run scripts/gen-api-reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
