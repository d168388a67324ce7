"""The kubelet server settings the API benches serve with: 127.0.0.1, ephemeral ports, a fresh
CA and serving certificate in ``tmp``. pykubelet is imported when called, after the bench has
put the tree it measures (``PYKUBELET_TREE``) on the path."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def loopback_settings(tmp: Path) -> tuple[Any, Any]:
    """(the CA's ``CertPair``, ``ServerSettings``) for a bench server on 127.0.0.1."""
    from pykubelet.security.certs import create_ca, create_serving_cert
    from pykubelet.server import ServerSettings

    ca = create_ca(str(tmp))
    serving = create_serving_cert(str(tmp), "bench-node", ca=ca)
    settings = ServerSettings(
        node_name="bench-node",
        address="127.0.0.1",
        port=0,
        healthz_port=0,
        tls_cert_file=serving.cert_file,
        tls_private_key_file=serving.key_file,
        client_ca_file=ca.cert_file,
    )
    return ca, settings
