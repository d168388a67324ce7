"""The OpenAPI 3.1 description of the kubelet API, shipped as ``kubelet-api.yaml`` beside this
module and served on 10250 at ``/openapi/v3`` (authorized as ``get nodes/proxy``)."""

from pykubelet.server.openapi.description import (
    DESCRIPTION_FILE,
    OPENAPI_PATH,
    load_description,
    openapi_routes,
)

__all__ = ["DESCRIPTION_FILE", "OPENAPI_PATH", "load_description", "openapi_routes"]
