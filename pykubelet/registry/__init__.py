"""A client of the OCI distribution API (registries), for the embedded process runtime.

``refs`` parses image references; ``manifests`` and ``auth`` are sans-IO (manifest parsing and
platform choice; auth challenges and token requests); ``client`` is the aiohttp side. The runtime
layer itself stays free of aiohttp: ``runtime/process/pull.py`` drives this client.
"""

from pykubelet.registry.client import RegistryClient
from pykubelet.registry.manifests import ImageIndex, ImageManifest, choose_platform, parse_manifest
from pykubelet.registry.refs import ImageRef, normalize_ref, parse_ref

__all__ = [
    "ImageIndex",
    "ImageManifest",
    "ImageRef",
    "RegistryClient",
    "choose_platform",
    "normalize_ref",
    "parse_manifest",
    "parse_ref",
]
