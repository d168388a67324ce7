"""CNI plugin invocation per the CNI specification (1.0): config lists, chaining, ADD/DEL/CHECK.

A network is a ``NetworkConfigList``: ``name``, ``cniVersion`` and ``plugins``. Each plugin is
an executable named by its ``type``, found in the bin dir; it gets the operation in ``CNI_*``
environment variables and its own config on stdin, with ``name``/``cniVersion`` injected and the
previous plugin's result as ``prevResult``. ADD runs the plugins in order, DEL in reverse (each DEL
sees the cached ADD result), CHECK in order. A plugin that exits non-zero prints an error object
``{"code", "msg", "details"}``; it becomes ``CniPluginError``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pykubelet.network.types import CniConfigError, CniPluginError
from pykubelet.runtime.types import PortMapping

__all__ = [
    "CniInvocation",
    "ConfList",
    "cni_port_mappings",
    "inject_runtime_config",
    "invoke_list",
    "load_conf_dir",
    "result_ips",
]

JSONObject = dict[str, Any]
_PLUGIN_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfList:
    name: str
    cni_version: str
    plugins: tuple[Mapping[str, Any], ...]
    source: str = ""  # the file it came from, "" for built-in

    @classmethod
    def from_json(cls, doc: object, *, source: str = "") -> ConfList:
        where = source or "network config"
        if not isinstance(doc, dict):
            raise CniConfigError("expected a JSON object", field=where)
        if "plugins" not in doc and "type" in doc:  # a single-plugin .conf
            doc = {
                "name": doc.get("name"),
                "cniVersion": doc.get("cniVersion"),
                "plugins": [doc],
            }
        name, version, plugins = doc.get("name"), doc.get("cniVersion"), doc.get("plugins")
        if not isinstance(name, str) or not name:
            raise CniConfigError("Required value", field=f"{where}: name")
        if not isinstance(version, str) or not version:
            raise CniConfigError("Required value", field=f"{where}: cniVersion")
        if not isinstance(plugins, list) or not plugins:
            raise CniConfigError("Required value: at least one plugin", field=f"{where}: plugins")
        for i, p in enumerate(plugins):
            if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p["type"]:
                raise CniConfigError("each plugin needs a type", field=f"{where}: plugins[{i}]")
            if "/" in p["type"]:
                raise CniConfigError("type is a plugin name", field=f"{where}: plugins[{i}].type")
        return cls(name=name, cni_version=version, plugins=tuple(plugins), source=source)

    def to_json(self) -> JSONObject:
        return {"cniVersion": self.cni_version, "name": self.name, "plugins": list(self.plugins)}


def load_conf_dir(conf_dir: str) -> ConfList | None:
    """The first network in ``conf_dir`` by file name (``*.conflist``, ``*.conf``, ``*.json``),
    as containerd picks it; None when the directory holds none."""
    d = Path(conf_dir)
    if not d.is_dir():
        return None
    files = sorted(p for p in d.iterdir() if p.suffix in (".conflist", ".conf", ".json"))
    for path in files:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CniConfigError(f"unreadable: {e}", field=str(path)) from e
        return ConfList.from_json(doc, source=str(path))
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CniInvocation:
    """One attachment: which container, namespace and interface, and the CNI_ARGS to pass."""

    container_id: str
    netns_path: str
    ifname: str
    args: tuple[tuple[str, str], ...] = ()

    def env(self, command: str, bin_dir: str) -> dict[str, str]:
        cni_args = ";".join(f"{k}={v}" for k, v in (("IgnoreUnknown", "1"), *self.args))
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": self.netns_path,
            "CNI_IFNAME": self.ifname,
            "CNI_ARGS": cni_args,
            "CNI_PATH": bin_dir,
        }


async def _exec_plugin(
    plugin: Mapping[str, Any],
    stdin: bytes,
    env: Mapping[str, str],
    bin_dir: str,
) -> JSONObject | None:
    ptype = str(plugin["type"])
    exe = None
    for d in bin_dir.split(os.pathsep):
        candidate = os.path.join(d, ptype)
        if os.access(candidate, os.X_OK):
            exe = candidate
            break
    if exe is None:
        raise CniPluginError(f"failed to find plugin {ptype!r} in path [{bin_dir}]", plugin=ptype)
    proc = await asyncio.create_subprocess_exec(
        exe,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    try:
        async with asyncio.timeout(_PLUGIN_TIMEOUT_S):
            out, err = await proc.communicate(stdin)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    command = env.get("CNI_COMMAND", "")
    if proc.returncode != 0:
        try:
            obj = json.loads(out or b"{}")
        except ValueError:
            obj = {}
        msg = obj.get("msg") if isinstance(obj, dict) else None
        raise CniPluginError(
            f"plugin {ptype} failed ({command}): {msg or err.decode(errors='replace').strip()}",
            code=int(obj.get("code", 0)) if isinstance(obj, dict) else 0,
            details=str(obj.get("details", "")) if isinstance(obj, dict) else "",
            plugin=ptype,
        )
    if command != "ADD" or not out.strip():
        return None
    try:
        result = json.loads(out)
    except ValueError as e:
        raise CniPluginError(
            f"plugin {ptype} printed a result that is not JSON", plugin=ptype
        ) from e
    if not isinstance(result, dict):
        raise CniPluginError(f"plugin {ptype} printed a non-object result", plugin=ptype)
    return result


def inject_runtime_config(
    plugin: Mapping[str, Any], capability_args: Mapping[str, Any]
) -> dict[str, Any]:
    """The plugin's config with ``runtimeConfig`` holding the capability arguments it declares
    (``"capabilities": {"portMappings": true}``), as libcni injects them; unchanged when it
    declares none of those given."""
    net = dict(plugin)
    caps = plugin.get("capabilities")
    if not isinstance(caps, Mapping) or not capability_args:
        return net
    rc = {k: v for k, v in capability_args.items() if caps.get(k) is True}
    if rc:
        net["runtimeConfig"] = rc
    return net


async def invoke_list(
    command: str,
    conf: ConfList,
    inv: CniInvocation,
    bin_dir: str,
    *,
    prev_result: JSONObject | None = None,
    capability_args: Mapping[str, Any] | None = None,
) -> JSONObject | None:
    """Run ``command`` over the list; ADD returns the final result, DEL/CHECK return None.
    ``capability_args`` (``{"portMappings": [...]}``) go to the plugins that declare them."""
    if command not in ("ADD", "DEL", "CHECK"):
        raise CniConfigError(f"unknown CNI command {command!r}", field="command")
    env = inv.env(command, bin_dir)
    plugins: Sequence[Mapping[str, Any]] = conf.plugins
    if command == "DEL":
        plugins = tuple(reversed(plugins))
    result = prev_result  # ADD: a chain may start from a result made outside CNI
    for plugin in plugins:
        net = inject_runtime_config(plugin, capability_args or {})
        net["name"] = conf.name
        net["cniVersion"] = conf.cni_version
        if result is not None:
            net["prevResult"] = result
        out = await _exec_plugin(plugin, json.dumps(net).encode(), env, bin_dir)
        if command == "ADD":
            result = out if out is not None else result
    return result if command == "ADD" else None


def result_ips(result: Mapping[str, Any] | None) -> tuple[tuple[str, ...], str]:
    """Addresses (no prefix, IPv4 first) and the first gateway of a CNI result."""
    if not result:
        return (), ""
    ips: list[str] = []
    gateway = ""
    for entry in result.get("ips") or []:
        if not isinstance(entry, dict):
            continue
        addr = str(entry.get("address", "")).split("/", 1)[0]
        if addr:
            ips.append(addr)
        gateway = gateway or str(entry.get("gateway", "") or "")
    ips.sort(key=lambda a: ":" in a)
    return tuple(ips), gateway


def cni_port_mappings(mappings: Sequence[PortMapping]) -> list[JSONObject]:
    """The ``portMappings`` capability argument: mappings with a host port only, protocol in
    lower case, ``hostIP`` omitted when unset (as containerd's CRI plugin passes them)."""
    out: list[JSONObject] = []
    for m in mappings:
        if m.host_port <= 0:
            continue
        entry: JSONObject = {
            "hostPort": m.host_port,
            "containerPort": m.container_port,
            "protocol": (m.protocol or "TCP").lower(),
        }
        if m.host_ip:
            entry["hostIP"] = m.host_ip
        out.append(entry)
    return out
