"""The composition root: builds every part from the configuration and runs them together."""

from pykubelet.agent.agent import Agent, NodeRuntime, build_network, build_runtime, describe_host

__all__ = ["Agent", "NodeRuntime", "build_network", "build_runtime", "describe_host"]
