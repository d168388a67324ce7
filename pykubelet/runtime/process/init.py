"""Container init: runs as the container's process (started by the shim, already inside the
sandbox's namespaces), prepares it, then execs the container's command in place.

Standalone on purpose (stdlib only, run as ``python -I -S init.py SPEC``): it must start fast
and must not import the agent. Steps: join cgroups; in a new mount namespace mount the overlay
root, /proc, /dev and the bind mounts, pivot into the root; drop capabilities; set groups,
gid, uid; set no_new_privs; chdir; exec. The environment it receives is the container's.
Any failure is printed to stderr (which goes to the container log) and exits 127.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys
import warnings  # noqa: F401  (os.execvpe imports it lazily, after the stdlib is out of reach)

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
CLONE_NEWNS = 0x00020000
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
SYS_PIVOT_ROOT = 155  # x86_64
SYS_CAPSET = 126
CAP_LAST = 40

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            None if src is None else src.encode(),
            dst.encode(),
            None if fstype is None else fstype.encode(),
            ctypes.c_ulong(flags),
            None if data is None else data.encode(),
        ),
        f"mount {src} on {dst}",
    )


def _bind(src: str, dst: str, readonly: bool) -> None:
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst):
            open(dst, "a").close()
    _mount(src, dst, None, MS_BIND | MS_REC, None)
    if readonly:
        _mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)


def _setup_dev(root: str) -> None:
    dev = os.path.join(root, "dev")
    os.makedirs(dev, exist_ok=True)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        src = "/dev/" + name
        if os.path.exists(src) and stat.S_ISCHR(os.stat(src).st_mode):
            _bind(src, os.path.join(dev, name), False)
    os.makedirs(os.path.join(dev, "shm"), exist_ok=True)
    _mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k")
    os.makedirs(os.path.join(dev, "pts"), exist_ok=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, os.path.join(dev, name))
    os.symlink("/proc/self/fd/1", os.path.join(dev, "stdout"))
    os.symlink("/proc/self/fd/2", os.path.join(dev, "stderr"))


def _pivot(root: str) -> None:
    os.chdir(root)
    _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")


def _drop_caps(keep: list[int], uid: int) -> None:
    keep_set = set(keep)
    for cap in range(CAP_LAST + 1):
        if cap not in keep_set:
            _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the kernel's last cap
    if uid != 0:
        return  # setuid to non-zero clears the effective and permitted sets anyway
    lo = sum(1 << c for c in keep_set if c < 32)
    hi = sum(1 << (c - 32) for c in keep_set if c >= 32)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)(lo, lo, lo, hi, hi, hi)
    _check(_libc.syscall(SYS_CAPSET, header, data), "capset")


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    for procs in spec.get("cgroup_procs", []):
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    root = spec.get("rootfs")
    if spec.get("mount_ns"):
        _check(_libc.unshare(CLONE_NEWNS), "unshare mount namespace")
        _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        target = "/"
        if root:
            merged = root["merged"]
            opts = f"lowerdir={root['lower']},upperdir={root['upper']},workdir={root['work']}"
            _mount("overlay", merged, "overlay", 0, opts)
            target = merged
        if root or spec.get("new_pid"):
            proc = os.path.join(target, "proc")
            os.makedirs(proc, exist_ok=True)
            _mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        if root:
            _setup_dev(target)
        for m in spec.get("mounts", []):
            _bind(m["src"], os.path.join(target, m["dst"].lstrip("/")), m["ro"])
        if root:
            _pivot(target)
            if spec.get("readonly_rootfs"):
                _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    uid = spec.get("uid")
    gid = spec.get("gid")
    caps = spec.get("caps")
    if caps is not None:
        _drop_caps(caps, 0 if uid is None else uid)
    if os.geteuid() == 0:
        if spec.get("groups") is not None or gid is not None:
            os.setgroups(spec.get("groups") or [])
        if gid is not None:
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
    if spec.get("no_new_privs"):
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    cwd = spec.get("cwd") or "/"
    if root and not os.path.isdir(cwd):
        os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)
    argv = spec["argv"]
    os.execvpe(argv[0], argv, dict(os.environ))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except OSError as e:
        sys.stderr.write(f"pykubelet: cannot start container: {e}\n")
        sys.exit(127 if not isinstance(e, PermissionError) else 126)
