"""ConfigMaps and Secrets from the API server in env and volumes, read with the node's
identity (Node authorizer), against kube-apiserver v1.20.2."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.node.cluster import IMAGE, ApiNode, ControlPlane, wait_api


def _logs(cp: ControlPlane, namespace: str, name: str) -> str:
    return cp.kubectl("logs", "-n", namespace, name, check=False)


def _ref(env: str, kind: str, name: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": env, "valueFrom": {kind: ref}}


def test_config_map_and_secret_env_and_volumes(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    cp.kubectl("create", "configmap", "cfg", "-n", namespace, "--from-literal=color=blue",
               "--from-literal=size=10")  # fmt: skip
    cp.kubectl("create", "secret", "generic", "sec", "-n", namespace, "--from-literal=pw=hunter2")
    script = (
        'echo "env $COLOR $PW $P_size $MISSING."; cat /cfg/color; echo; cat /sec/pw; echo; '
        "cat /proj/size; echo; exec sleep 3600"
    )
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader"},
        "spec": {
            "nodeName": cp.node_name,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": IMAGE,
                    "command": ["sh", "-c", script],
                    "env": [
                        _ref("COLOR", "configMapKeyRef", "cfg", "color"),
                        _ref("PW", "secretKeyRef", "sec", "pw"),
                        _ref("MISSING", "configMapKeyRef", "nope", "x", optional=True),
                    ],
                    "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "P_"}],
                    "volumeMounts": [
                        {"name": "cfg", "mountPath": "/cfg"},
                        {"name": "sec", "mountPath": "/sec"},
                        {"name": "proj", "mountPath": "/proj"},
                    ],
                }
            ],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec"}},
                {"name": "proj", "projected": {"sources": [{"configMap": {
                    "name": "cfg", "items": [{"key": "size", "path": "size"}]}}]}},
            ],
        },
    }  # fmt: skip
    cp.apply(pod, namespace)
    wait_api(lambda: "hunter2" in _logs(cp, namespace, "reader"), 60, "the pod's output")
    assert _logs(cp, namespace, "reader").splitlines()[:4] == [
        "env blue hunter2 10 .",
        "blue",
        "hunter2",
        "10",
    ]
    # an update reaches the mounted volume of the running container (--sync-frequency 5s)
    cp.kubectl("patch", "configmap", "cfg", "-n", namespace, "-p", '{"data":{"color":"green"}}')
    wait_api(
        lambda: cp.kubectl("exec", "-n", namespace, "reader", "--", "cat", "/cfg/color",
                           check=False) == "green",
        150,
        "the updated ConfigMap in the running container",
    )  # fmt: skip
    # a missing, non-optional ConfigMap keeps the container waiting with the reason
    missing = dict(pod, metadata={"name": "waits"})
    missing["spec"] = dict(pod["spec"], volumes=[], containers=[
        {"name": "c", "image": IMAGE, "command": ["sleep", "3600"],
         "env": [_ref("X", "configMapKeyRef", "absent", "k")]}
    ])  # fmt: skip
    cp.apply(missing, namespace)

    def waiting() -> dict[str, Any] | None:
        p = cp.get("pod", "-n", namespace, "waits")
        cs = ((p or {}).get("status") or {}).get("containerStatuses") or [{}]
        return (cs[0].get("state") or {}).get("waiting")

    w = wait_api(
        lambda: (x := waiting()) and x.get("reason") == "CreateContainerConfigError" and x,
        60,
        "CreateContainerConfigError",
    )
    assert 'configmap "absent" not found' in w["message"]


def test_projected_service_account_token_and_root_ca(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    api_node.start()
    wait_api(lambda: cp.get("serviceaccount", "-n", namespace, "default"), 60, "the default SA")
    root_ca = wait_api(
        lambda: cp.get("configmap", "-n", namespace, "kube-root-ca.crt"), 60, "kube-root-ca.crt"
    )
    sources = [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    ]
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sa"},
        "spec": {
            "nodeName": cp.node_name,
            "serviceAccountName": "default",  # no ServiceAccount admission in the stack
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": IMAGE,
                    "command": ["sh", "-c", "cat /sa/token; echo; cat /sa/ca.crt; exec sleep 3600"],
                    "volumeMounts": [{"name": "sa", "mountPath": "/sa"}],
                }
            ],
            "volumes": [{"name": "sa", "projected": {"sources": sources}}],
        },
    }
    cp.apply(pod, namespace)
    out = wait_api(
        lambda: (x := _logs(cp, namespace, "sa")) and "END CERTIFICATE" in x and x,
        60,
        "the token and the CA in the pod",
    )
    token = out.splitlines()[0]
    assert out.split("\n", 1)[1].strip() == root_ca["data"]["ca.crt"].strip()
    uid = cp.get("pod", "-n", namespace, "sa")["metadata"]["uid"]
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }
    r = subprocess.run(
        [str(cp.kubectl_bin), "--kubeconfig", str(cp.dir / "admin.kubeconfig"), "create", "-f",
         "-", "-o", "json"],
        input=json.dumps(review), capture_output=True, text=True, check=True,
    )  # fmt: skip
    status = json.loads(r.stdout)["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == f"system:serviceaccount:{namespace}:default"
    assert status["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == [uid]
