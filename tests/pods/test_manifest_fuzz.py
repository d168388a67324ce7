"""Any document a manifest file can hold yields a pod or InvalidInput, nothing else."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pykubelet.core.errors import InvalidInput
from pykubelet.pods import RuntimeConfigBuilder, static_pod_from_document
from pykubelet.pods.status_builder import qos_class

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
container_keys = ["command", "args", "env", "resources", "workingDir", "ports"]
container = st.fixed_dictionaries(
    {"name": st.sampled_from(["c", "d", 5, None]), "image": st.sampled_from(["busybox", "", 1])},
    optional={k: values for k in container_keys},
)
document = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["v1", "v2", 3]),
        "kind": st.sampled_from(["Pod", "Service"]),
        "metadata": st.one_of(
            values, st.fixed_dictionaries({"name": st.sampled_from(["p", "P!", 7])})
        ),
        "spec": st.one_of(
            values,
            st.fixed_dictionaries(
                {"containers": st.lists(container, max_size=2)},
                optional={
                    "initContainers": st.lists(container, max_size=2),
                    "restartPolicy": values,
                    "terminationGracePeriodSeconds": values,
                },
            ),
        ),
    }
)


@settings(max_examples=400, deadline=None)
@given(document)
def test_documents_become_pods_or_invalid_input(doc: dict[str, Any]) -> None:
    try:
        pod = static_pod_from_document(doc, path="/p.yaml", node_name="n", seen_at=0.0)
    except InvalidInput:
        return
    qos_class(pod)
    builder = RuntimeConfigBuilder(root_dir="/r")
    builder.sandbox(pod, 0)
    for i, c in enumerate(pod.spec.containers):
        try:
            builder.container(pod, c, 0, f"spec.containers[{i}]")
        except InvalidInput:
            pass
