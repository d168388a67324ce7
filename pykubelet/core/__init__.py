"""The vocabulary every layer shares: the exception tree and the injected clock."""

__all__: list[str] = []
