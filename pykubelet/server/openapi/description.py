"""Load the shipped description once and serve it as JSON.

The YAML file uses anchors under ``x-templates`` so operations can share parts; PyYAML expands
them, and the served JSON leaves the templates out (they are not part of the API).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

__all__ = ["DESCRIPTION_FILE", "OPENAPI_PATH", "load_description", "openapi_routes"]

DESCRIPTION_FILE = "kubelet-api.yaml"
OPENAPI_PATH = "/openapi/v3"


@functools.cache
def _text() -> str:
    return resources.files(__package__).joinpath(DESCRIPTION_FILE).read_text(encoding="utf-8")


def load_description() -> dict[str, Any]:
    """A fresh copy of the description (anchors expanded, ``x-templates`` removed)."""
    doc: dict[str, Any] = yaml.safe_load(_text())
    doc.pop("x-templates", None)
    return doc


@functools.cache
def _json_body() -> bytes:
    return json.dumps(load_description(), separators=(",", ":")).encode()


async def _serve(request: web.Request) -> web.StreamResponse:
    return web.Response(body=_json_body(), headers={"Content-Type": "application/json"})


def openapi_routes() -> list[web.RouteDef]:
    """``GET /openapi/v3``; mount on 10250 only (behind authentication)."""
    return [web.get(OPENAPI_PATH, _serve, allow_head=False)]
