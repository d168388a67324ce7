"""The security composition: building auth and audit from the config, start-up warnings,
session recording, certificates and the CIS benchmark checks of ``pykubelet doctor``.

The authenticators and authorizers themselves live in ``pykubelet.auth`` (no aiohttp there).
"""

__all__: list[str] = []
