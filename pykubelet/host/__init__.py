"""Thin bindings to the Linux host that several layers use: inotify and network namespaces."""

__all__: list[str] = []
