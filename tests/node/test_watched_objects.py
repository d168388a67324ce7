"""Watched ConfigMaps and Secrets (``configMapAndSecretChangeDetectionStrategy: Watch``) and
the node's ``status.images``, against kube-apiserver v1.20.2 with the node's identity (the
Node authorizer allows a watch of one referenced object by name, nothing more)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from tests.node.cluster import IMAGE, ApiNode, ControlPlane, wait_api


def _exec(cp: ControlPlane, ns: str, pod: str, script: str) -> str:
    return cp.kubectl("exec", "-n", ns, pod, "--", "sh", "-c", script, check=False)


def test_updates_reach_running_pods_by_watch_not_by_resync(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    # syncFrequency 10m: the periodic re-read cannot be what brings an update within the test
    api_node.extra_args += ["--sync-frequency", "10m"]
    api_node.start()
    cp.kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal=color=blue")
    cp.kubectl("create", "secret", "generic", "sec", "-n", ns, "--from-literal=pw=one")

    def pod(name: str, *, env: bool, volumes: list[dict[str, Any]]) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": "c",
            "image": IMAGE,
            "command": ["sleep", "3600"],
            "volumeMounts": [{"name": v["name"], "mountPath": f"/{v['name']}"} for v in volumes],
        }
        if env:
            ref = {"name": "sec", "key": "pw"}
            container["env"] = [{"name": "PW", "valueFrom": {"secretKeyRef": ref}}]
        spec = {
            "nodeName": cp.node_name,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            "volumes": volumes,
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}

    cfg = {"name": "cfg", "configMap": {"name": "cfg"}}
    cp.apply(pod("w", env=True, volumes=[
        cfg,
        {"name": "sec", "secret": {"secretName": "sec"}},
        {"name": "later", "configMap": {"name": "later", "optional": True}},  # created later
    ]), ns)  # fmt: skip
    immutable = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "imm"},
                 "data": {"k": "x"}, "immutable": True}  # fmt: skip
    cp.apply(immutable, ns)
    cp.apply(pod("w2", env=False, volumes=[cfg, {"name": "imm", "configMap": {"name": "imm"}}]), ns)

    def color_in_both(color: str) -> bool:
        return all(_exec(cp, ns, name, "cat /cfg/color") == color for name in ("w", "w2"))

    wait_api(lambda: color_in_both("blue"), 90, "both pods running with the ConfigMap")
    assert _exec(cp, ns, "w", "ls /later") == ""
    assert _exec(cp, ns, "w2", "cat /imm/k") == "x"
    # an immutable object cannot change: its watch ends once it has been read (as upstream)
    wait_api(lambda: f"configmap {ns}/imm: immutable" in api_node.log(), 30, "imm unwatched")

    cp.kubectl("patch", "configmap", "cfg", "-n", ns, "-p", '{"data":{"color":"green"}}')
    wait_api(lambda: color_in_both("green"), 60, "the updated ConfigMap in both pods")

    # a Secret update reaches its volume, never the environment of the running container
    cp.kubectl("patch", "secret", "sec", "-n", ns, "-p", '{"stringData":{"pw":"two"}}')
    wait_api(lambda: _exec(cp, ns, "w", "cat /sec/pw") == "two", 60, "the updated Secret file")
    assert _exec(cp, ns, "w", 'printf %s "$PW"') == "one"

    # an optional ConfigMap created after the pod appears in it, and goes when deleted
    cp.kubectl("create", "configmap", "later", "-n", ns, "--from-literal=k=v")
    wait_api(lambda: _exec(cp, ns, "w", "cat /later/k") == "v", 60, "the late ConfigMap")
    cp.kubectl("delete", "configmap", "later", "-n", ns)
    wait_api(lambda: _exec(cp, ns, "w", "ls /later") == "", 60, "the deleted ConfigMap gone")

    log = api_node.log()
    for what in (f"configmap {ns}/cfg", f"secret {ns}/sec", f"configmap {ns}/later"):
        assert f"watching {what}" in log, what
    assert "from the API server: 403" not in log, "the Node authorizer refused a watch"

    # one watch per object, stopped when the last pod referencing it is gone
    assert log.count(f"watching configmap {ns}/cfg") == 1
    cp.kubectl("delete", "pod", "w", "-n", ns, "--wait=false")
    wait_api(
        lambda: f"stopped watching secret {ns}/sec" in api_node.log(), 60, "the Secret unwatched"
    )
    log = api_node.log()
    assert f"stopped watching configmap {ns}/later" in log
    assert f"stopped watching configmap {ns}/cfg" not in log  # w2 still uses it
    cp.kubectl("delete", "pod", "w2", "-n", ns, "--wait=false")
    wait_api(lambda: f"stopped watching configmap {ns}/cfg" in api_node.log(), 60, "cfg unwatched")


def _tiny_image(path: Path) -> Path:
    """A docker archive ``localhost/tiny:1`` whose root filesystem is one 1000-byte file."""

    def tar(members: dict[str, bytes]) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as t:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return raw.getvalue()

    manifest = [{"Config": "config.json", "RepoTags": ["localhost/tiny:1"], "Layers": ["l.tar"]}]
    path.write_bytes(tar({
        "config.json": json.dumps({"config": {"Cmd": ["/data"]}}).encode(),
        "l.tar": tar({"data": b"x" * 1000}),
        "manifest.json": json.dumps(manifest).encode(),
    }))  # fmt: skip
    return path


def _images_cli(root: Path, *args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "pykubelet.cli", "images", *args, "--root-dir", str(root)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_node_status_images_capped_and_the_get_strategy(
    api_node: ApiNode, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp = control_plane
    api_node.start()

    def images() -> list[dict[str, Any]]:
        return ((cp.node() or {}).get("status") or {}).get("images") or []

    first = wait_api(lambda: images(), 30, "status.images")
    busybox_names = ["localhost/busybox:1.35", "localhost/busybox:latest"]  # the tarball's tags
    assert [i["names"] for i in first] == [busybox_names]
    busybox = first[0]["sizeBytes"]
    assert busybox > 500_000  # busybox's root filesystem, a megabyte or so
    # an image added while the agent runs is reported at the next status update
    _images_cli(api_node.root, "import", str(_tiny_image(tmp_path / "tiny.tar")))
    both = [
        {"names": busybox_names, "sizeBytes": busybox},
        {"names": ["localhost/tiny:1"], "sizeBytes": 1000},
    ]
    wait_api(lambda: images() == both, 30, f"both images in status.images, got {images()}")

    api_node.stop()
    config = tmp_path / "kubelet.yaml"
    config.write_text(
        "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n"
        "nodeStatusMaxImages: 1\nconfigMapAndSecretChangeDetectionStrategy: Get\n"
    )
    api_node.extra_args += ["--config", str(config)]
    api_node.start()
    wait_api(lambda: images() == both[:1], 30, f"only the largest image, got {images()}")

    # Get: the ConfigMap is read with a GET, nothing is watched
    cp.kubectl("create", "configmap", "cfg", "-n", namespace, "--from-literal=k=got")
    spec = {
        "nodeName": cp.node_name,
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"],
                        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
    }  # fmt: skip
    cp.apply(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "g"}, "spec": spec}, namespace
    )
    wait_api(lambda: _exec(cp, namespace, "g", "cat /cfg/k") == "got", 60, "the ConfigMap by GET")
    assert "watching configmap" not in api_node.log()
