"""Pod-spec features: probes, lifecycle hooks, volumes, the downward API and the security
context. They plug into the pod lifecycle (``pykubelet.pods``) through ``WorkerDeps`` and
never import its manager or worker; verdicts (a failed liveness probe, a failed postStart)
go to the pod's worker, the only code that asks the runtime to act on its pod."""

from pykubelet.podspec.downward import NodeAllocatable, PodFacts
from pykubelet.podspec.features import PodSpecFeatures
from pykubelet.podspec.prober import ProbeChange, Prober, ProbeRecorder, ProbeType

__all__ = [
    "NodeAllocatable",
    "PodFacts",
    "PodSpecFeatures",
    "ProbeChange",
    "ProbeRecorder",
    "ProbeType",
    "Prober",
]
