"""``pykubelet client``: a kubectl-like command line for the kubelet API (any kubelet)."""

from pykubelet.client.main import client_main

__all__ = ["client_main"]
