"""Developer tools outside the shipped package: the test busybox image, firewall clean-up."""

__all__: list[str] = []
