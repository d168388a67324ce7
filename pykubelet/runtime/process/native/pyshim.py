"""Python fallback of pkshim.c, for hosts without a C compiler: same modes, arguments and files.

Standalone (stdlib only, run as ``python -I -S pyshim.py MODE …``). It costs a Python interpreter
per helper (~9-10 MiB RSS) where the C helper costs ~1.4 MiB, so the runtime prefers C.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import getopt
import os
import select
import signal
import socket
import stat
import struct
import sys
import termios
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
SYS_PIVOT_ROOT, SYS_CAPSET = 155, 126  # x86_64
SYS_OPENAT2 = 437  # every architecture
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10
MAX_LINE = 16384
_TIOCSPTLCK, _TIOCGPTPEER = 0x40045431, 0x5441  # unlockpt(); the slave from its master

libc = ctypes.CDLL(None, use_errno=True)
_ready_fd = -1


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def report(msg: str) -> None:
    global _ready_fd
    if _ready_fd >= 0:
        try:
            os.write(_ready_fd, msg.encode())
        finally:
            os.close(_ready_fd)
            _ready_fd = -1


def fail(what: str, e: BaseException) -> None:
    report(f"ERR {what}: {e}\n")
    os._exit(1)


def daemonize() -> None:
    global _ready_fd
    r, w = os.pipe()
    if os.fork() > 0:
        os.close(w)
        line = b""
        while not line.endswith(b"\n"):
            c = os.read(r, 1)
            if not c:
                break
            line += c
        line = line or b"ERR helper died before it was ready\n"
        os.write(1, line)
        os._exit(0 if line.startswith(b"OK") else 1)
    os.close(r)
    _ready_fd = w
    os.set_inheritable(w, False)
    os.setsid()
    dn = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(dn, fd)
    os.close(dn)


def setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(libc.setns(fd, 0), "setns " + path)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ pause


def cmd_pause(args: list[str]) -> None:
    opts, _ = getopt.getopt(args, "nipu:C:")
    flags, hostname, want_pid, want_lo = 0, None, False, False
    cgroups: list[str] = []
    for o, v in opts:
        if o == "-C":
            cgroups.append(v)
        elif o == "-n":
            flags, want_lo = flags | CLONE_NEWNET, True
        elif o == "-i":
            flags |= CLONE_NEWIPC
        elif o == "-p":
            flags, want_pid = flags | CLONE_NEWPID, True
        elif o == "-u":
            flags, hostname = flags | CLONE_NEWUTS, v
    daemonize()
    try:
        for procs_file in cgroups:  # the pod's cgroup, joined first (best effort, as before)
            try:
                with open(procs_file, "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                pass
        if flags:
            _check(libc.unshare(flags), "unshare")
        if hostname:
            name = hostname.encode()
            _check(libc.sethostname(name, len(name)), "sethostname")
        if want_lo:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            ifr = bytearray(struct.pack("16sH14x", b"lo", 0))
            fcntl.ioctl(s, 0x8913, ifr)  # SIOCGIFFLAGS
            flags_now = struct.unpack_from("H", ifr, 16)[0] | 0x1 | 0x40  # IFF_UP | IFF_RUNNING
            fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags_now))  # SIOCSIFFLAGS
            s.close()
    except OSError as e:
        fail("pause", e)
    child = 0
    if want_pid:
        child = os.fork()
        if child == 0:
            while True:
                signal.pause()

        def term(_sig: int, _frame: object) -> None:
            os.kill(child, signal.SIGKILL)
            os._exit(0)

        signal.signal(signal.SIGTERM, term)
    report(f"OK {os.getpid()}\n")
    while True:
        if child:
            os.waitpid(child, 0)
            os._exit(0)
        signal.pause()


# ------------------------------------------------------------------ run


class LogWriter:
    def __init__(self, path: str, max_size: int, max_files: int, state_dir: str) -> None:
        self.path, self.max_size, self.max_files = path, max_size, max_files
        self.last_rotation = 0  # the stamp of this shim's last rotation (seconds)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.bufs = {"stdout": b"", "stderr": b""}
        # records that could not be written, as pkshim.c counts them in STATEDIR/logloss
        self.lost_records = self.lost_bytes = self.last_errno = 0
        self.loss_fd = os.open(
            os.path.join(state_dir, "logloss"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
        )
        self._save_loss()

    def _save_loss(self) -> None:
        line = f"{self.lost_records:020d} {self.lost_bytes:020d} {self.last_errno:05d}\n"
        with contextlib.suppress(OSError):
            os.pwrite(self.loss_fd, line.encode(), 0)

    def _write_record(self, rec: bytes) -> int:
        """The whole record or none (a cut one is truncated away); 0 or the errno."""
        done = 0
        while done < len(rec):
            try:
                done += os.write(self.fd, rec[done:])
            except OSError as e:
                if done:
                    with contextlib.suppress(OSError):
                        os.ftruncate(self.fd, os.fstat(self.fd).st_size - done)
                return e.errno or 5
        return 0

    def _rotate(self) -> None:
        """As log_rotate in pkshim.c: ``<log>.<stamp>``, the next free second when this one's
        name is taken; a rotation counts once whether plain, gzipped or both (the agent
        gzips older ones) and the agent's ``.tmp`` files are its own."""
        if self.fd >= 0:
            os.close(self.fd)
        t = max(int(time.time()), self.last_rotation + 1)
        while True:
            name = f"{self.path}.{time.strftime('%Y%m%d-%H%M%S', time.gmtime(t))}"
            if not os.path.exists(name) and not os.path.exists(name + ".gz"):
                break
            t += 1
        self.last_rotation = t
        with contextlib.suppress(OSError):
            os.rename(self.path, name)
        d, base = os.path.split(self.path)
        names = [
            f for f in os.listdir(d or ".") if f.startswith(base + ".") and not f.endswith(".tmp")
        ]
        keys = sorted({f.removesuffix(".gz") for f in names})
        old = set(keys[: max(len(keys) - max(self.max_files - 1, 0), 0)])
        for f in names:
            if f.removesuffix(".gz") in old:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(d, f))
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o640)
        except OSError:
            self.fd = -1
        self.size = 0

    def record(self, stream: str, partial: bool, msg: bytes) -> None:
        ns = time.time_ns()
        secs, nanos = divmod(ns, 1_000_000_000)
        frac = f"{nanos:09d}".rstrip("0")
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + (f".{frac}" if frac else "")
        rec = f"{ts}Z {stream} {'P' if partial else 'F'} ".encode() + msg + b"\n"
        if self.max_size > 0 and self.size > 0 and self.size + len(rec) > self.max_size:
            self._rotate()
        err = 0
        if self.fd < 0:  # a rotation could not create the new file: try again now
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
                self.size = os.fstat(self.fd).st_size
            except OSError as e:
                err = e.errno or 5
        err = err or self._write_record(rec)
        if err:
            self.lost_records += 1
            self.lost_bytes += len(msg)
            self.last_errno = err
            self._save_loss()
            return
        self.size += len(rec)

    def feed(self, stream: str, data: bytes) -> None:
        """Complete lines become F records, lines over MAX_LINE are split into P records,
        an unterminated tail waits in the buffer (as lb_feed in pkshim.c)."""
        buf = self.bufs[stream]
        while data:
            nl = data.find(b"\n")
            line = buf + (data if nl < 0 else data[:nl])
            while len(line) > MAX_LINE:
                self.record(stream, True, line[:MAX_LINE])
                line = line[MAX_LINE:]
            if nl < 0:
                buf, data = line, b""
            else:
                self.record(stream, False, line)
                buf, data = b"", data[nl + 1 :]
        self.bufs[stream] = buf

    def flush(self, stream: str) -> None:
        if self.bufs[stream]:
            self.record(stream, True, self.bufs[stream])
        self.bufs[stream] = b""


def _proc_start(pid: int) -> int:
    """Start time in clock ticks since boot (field 22 of /proc/PID/stat), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return int(raw[raw.rfind(b")") + 2 :].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _write_state(state_dir: str, body: str) -> None:
    tmp = os.path.join(state_dir, "state.tmp")
    with open(tmp, "w") as f:
        f.write(body)
    os.rename(tmp, os.path.join(state_dir, "state"))


def cmd_run(args: list[str]) -> None:
    opts, cargv = getopt.getopt(args, "s:l:m:k:N:Ptio")
    o: dict[str, str] = {}
    ns_paths: list[str] = []
    for k, v in opts:
        if k == "-N":
            ns_paths.append(v)
        else:
            o[k] = v
    state_dir, log_path = o["-s"], o["-l"]
    tty, want_stdin, stdin_once = "-t" in o, "-i" in o, "-o" in o
    daemonize()
    try:
        log = LogWriter(log_path, int(o.get("-m", 10 << 20)), int(o.get("-k", 5)), state_dir)
        os.chdir(state_dir)
        if os.path.exists("attach.sock"):
            os.unlink("attach.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind("attach.sock")
        os.chmod("attach.sock", 0o600)
        lsock.listen(8)
        lsock.setblocking(False)
        master = slave = -1
        out = err = inp = (-1, -1)
        # init (our own, as the runtime runs it) makes the terminal inside the container from
        # its devpts and sends the master back, as pkshim.c; anything else gets a host pty
        tty_sock: socket.socket | None = None
        if tty and cargv[-2:-1] == ["init"]:
            tty_sock, init_sock = socket.socketpair()
            cargv = [*cargv, "--tty-socket", str(init_sock.fileno())]
        elif tty:
            master, slave = os.openpty()
        else:
            out, err = os.pipe(), os.pipe()
            if want_stdin:
                inp = os.pipe()
        for p in ns_paths:
            setns(p)
        if "-P" in o:
            _check(libc.unshare(CLONE_NEWPID), "unshare pid")
        exec_r, exec_w = os.pipe()
    except OSError as e:
        fail("run", e)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    started = time.time_ns()
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if tty_sock is not None:
                os.set_inheritable(init_sock.fileno(), True)
            elif tty:
                os.dup2(slave, 0)
                os.dup2(slave, 1)
                os.dup2(slave, 2)
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            else:
                if inp[0] >= 0:
                    os.dup2(inp[0], 0)
                os.dup2(out[1], 1)
                os.dup2(err[1], 2)
            os.set_inheritable(exec_w, False)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execvp(cargv[0], cargv)
        except OSError as e:
            os.write(exec_w, struct.pack("i", e.errno or 1))
        os._exit(127)
    os.close(exec_w)
    got = os.read(exec_r, 4)
    exec_errno = struct.unpack("i", got)[0] if len(got) == 4 else 0
    os.close(exec_r)
    if tty_sock is not None:
        init_sock.close()
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(tty_sock, 1, 1)
        except OSError:
            fds = []
        tty_sock.close()
        # no master: init failed before the command ran (its exit is recorded below)
        master = fds[0] if fds else os.open(os.devnull, os.O_RDONLY)
    elif tty:
        os.close(slave)
    else:
        os.close(out[1])
        os.close(err[1])
        if inp[0] >= 0:
            os.close(inp[0])
    in_fd = master if tty else inp[1]
    head = (
        f"pid={child}\nshim_pid={os.getpid()}\nstarted_ns={started}\n"
        f"pid_start={_proc_start(child)}\nshim_start={_proc_start(os.getpid())}\n"
    )
    _write_state(state_dir, head)
    if exec_errno:
        log.record("stderr", False, f"exec {cargv[0]}: {os.strerror(exec_errno)}".encode())
    report(f"OK {os.getpid()} {child}\n")

    readers = {master: "stdout"} if tty else {out[0]: "stdout", err[0]: "stderr"}
    clients: dict[int, tuple[socket.socket, bytearray]] = {}
    exited, status = False, 0
    finished = 0
    # stdin for the container waits here until it reads it; clients are not read meanwhile
    pending = bytearray()
    close_in = False
    if in_fd >= 0:
        os.set_blocking(in_fd, False)

    def drop(fd: int) -> None:
        nonlocal close_in
        clients.pop(fd)[0].close()
        if stdin_once and not tty:
            close_in = True

    while readers or not exited:
        if close_in and not pending and in_fd >= 0:
            os.close(in_fd)
            in_fd, close_in = -1, False
        fds = [wake_r, lsock.fileno(), *readers, *([] if pending else clients)]
        wfds = [in_fd] if pending and in_fd >= 0 else []
        try:
            ready, writable, _ = select.select(fds, wfds, [], 0.2 if exited else None)
        except InterruptedError:
            continue
        if not ready and not writable and exited:
            break
        if writable:
            try:
                del pending[: os.write(in_fd, pending)]
            except BlockingIOError:
                pass
            except OSError:
                pending.clear()  # the container closed its stdin
        for fd in ready:
            if fd == wake_r:
                os.read(wake_r, 64)
                while True:
                    try:
                        pid, st = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    if pid == child:
                        exited, status, finished = True, st, time.time_ns()
            elif fd in readers:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                stream = readers[fd]
                if data:
                    log.feed(stream, data)
                    kind = 1 if stream == "stdout" else 2
                    frame = struct.pack(">BI", kind, len(data)) + data
                    for cfd, (s, _buf) in list(clients.items()):
                        # a client that cannot take the frame now is dropped, never waited for
                        try:
                            if s.send(frame, socket.MSG_DONTWAIT) != len(frame):
                                drop(cfd)
                        except OSError:
                            drop(cfd)
                else:
                    log.flush(stream)
                    del readers[fd]
            elif fd == lsock.fileno():
                try:
                    c, _ = lsock.accept()
                    clients[c.fileno()] = (c, bytearray())
                except OSError:
                    pass
            elif fd in clients:
                c, buf = clients[fd]
                try:
                    data = c.recv(65536, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                buf += data
                while len(buf) >= 5:
                    kind, n = struct.unpack(">BI", buf[:5])
                    if len(buf) < 5 + n:
                        break
                    payload = bytes(buf[5 : 5 + n])
                    del buf[: 5 + n]
                    if kind == 0 and in_fd >= 0:
                        pending += payload
                    elif kind == 1 and in_fd >= 0 and not tty:
                        close_in = True
                    elif kind == 2 and tty and n == 4:
                        cols, rows = struct.unpack(">HH", payload)
                        fcntl.ioctl(
                            master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0)
                        )
                if not data:
                    drop(fd)
    for stream in ("stdout", "stderr"):
        log.flush(stream)
    if not exited:
        _, status = os.waitpid(child, 0)
        finished = time.time_ns()
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else 0
    code = 128 + sig if code < 0 else code
    _write_state(
        state_dir,
        head + f"exit_code={code}\nsignal={sig}\nfinished_ns={finished}\nexec_errno={exec_errno}\n",
    )
    os.unlink("attach.sock")
    os._exit(0)


# ------------------------------------------------------------------ init


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            n = s[i + 1]
            out.append("\n" if n == "n" else "\t" if n == "t" else n)
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = [None if x is None else x.encode() for x in (src, dst, fstype, data)]
    _check(libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {dst}")


def _bind(src: str, dst: str, ro: bool) -> None:
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst):
            open(dst, "a").close()
    _mount(src, dst, None, MS_BIND | MS_REC, None)
    if ro:
        _mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _Root:
    """Paths inside the container root, resolved with openat2(RESOLVE_IN_ROOT) as pkshim.c
    does: an image's symlinks stay inside the root instead of reaching the host's files."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def open(self, rel: str, flags: int = os.O_PATH) -> int:
        how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        path = (rel.lstrip("/") or ".").encode()
        fd = libc.syscall(SYS_OPENAT2, self.fd, path, ctypes.byref(how), ctypes.sizeof(how))
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"resolve in root {rel}: {os.strerror(e)}")
        return int(fd)

    def make(self, rel: str, is_dir: bool, links: int = 0) -> int:
        """An O_PATH fd for ``rel``, creating what is missing (a dangling symlink is followed
        inside the root, as runc's securejoin.MkdirAll does)."""
        try:
            return self.open(rel)
        except FileNotFoundError:
            pass
        parts = [p for p in rel.split("/") if p]
        for i, name in enumerate(parts):
            prefix = "/".join(parts[: i + 1])
            try:
                os.close(self.open(prefix))
                continue
            except FileNotFoundError:
                pass
            parent = self.open("/".join(parts[:i]), os.O_PATH | os.O_DIRECTORY)
            try:
                try:
                    target = os.readlink(name, dir_fd=parent)
                except OSError:
                    target = None
                if target is not None:
                    if links >= 40:
                        raise OSError(40, f"resolve in root {rel}: too many symlinks")
                    base = "" if target.startswith("/") else "/".join(parts[:i])
                    nxt = "/".join(x for x in (base, target, *parts[i + 1 :]) if x)
                    return self.make(nxt, is_dir, links + 1)
                if i < len(parts) - 1 or is_dir:
                    os.mkdir(name, 0o755, dir_fd=parent)
                else:
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                    os.close(os.open(name, flags, 0o644, dir_fd=parent))
            finally:
                os.close(parent)
        return self.open(rel)

    def bind(self, src: str, rel: str, ro: bool) -> None:
        fd = self.make(rel, os.path.isdir(src))
        try:
            _mount(src, f"/proc/self/fd/{fd}", None, MS_BIND | MS_REC, None)
        finally:
            os.close(fd)
        if ro:
            fd = self.open(rel)  # the new mount, not the directory under it
            try:
                _mount(None, f"/proc/self/fd/{fd}", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
            finally:
                os.close(fd)

    def mount(self, rel: str, source: str, fstype: str, flags: int, data: str | None) -> None:
        fd = self.make(rel, True)
        try:
            _mount(source, f"/proc/self/fd/{fd}", fstype, flags, data)
        finally:
            os.close(fd)


def _setup_dev(root: _Root) -> None:
    root.mount("dev", "tmpfs", "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    devfd = root.open("dev", os.O_PATH | os.O_DIRECTORY)  # our tmpfs: no image symlinks
    dev = f"/proc/self/fd/{devfd}"
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        src = "/dev/" + name
        if os.path.exists(src) and stat.S_ISCHR(os.stat(src).st_mode):
            _bind(src, os.path.join(dev, name), False)
    os.makedirs(os.path.join(dev, "shm"))
    _mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k")
    os.makedirs(os.path.join(dev, "pts"))
    # the container's own devpts instance, as in pkshim.c
    _mount(
        "devpts",
        os.path.join(dev, "pts"),
        "devpts",
        MS_NOSUID | MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ):
        os.symlink(target, os.path.join(dev, name))
    os.close(devfd)


def _terminal_to(sock_fd: int) -> None:
    """Make the container's terminal from its own devpts (the host's when it has none), as
    pkshim.c: it becomes stdio and the controlling terminal, the master goes to the shim."""
    ptmx = "/dev/pts/ptmx" if os.path.exists("/dev/pts/ptmx") else "/dev/ptmx"
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)
    with socket.socket(fileno=sock_fd) as sock:
        socket.send_fds(sock, [b"m"], [master])
    os.close(master)


def cmd_init(args: list[str]) -> None:
    import warnings  # noqa: F401  (os.execvp imports it lazily, after the stdlib is out of reach)

    tty_sock = int(args[2]) if args[1:2] == ["--tty-socket"] else -1
    spec: list[list[str]] = []
    with open(args[0]) as f:
        for line in f.read().split("\n"):
            if line:
                spec.append([_unescape(x) for x in line.split("\t")])
    keys = {d[0] for d in spec}
    one = {d[0]: d[1:] for d in spec}
    for d in spec:
        if d[0] == "cgroup":
            with open(d[1], "w") as f:
                f.write(str(os.getpid()))
    target, rootfs = "/", one.get("rootfs")
    if "mountns" in keys:
        _check(libc.unshare(CLONE_NEWNS), "unshare mount namespace")
        _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        if rootfs:
            lower, upper, work, merged = rootfs
            _mount(
                "overlay", merged, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}"
            )
            target = merged
        root = _Root(target)
        if rootfs or "proc" in keys:
            root.mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        if rootfs:
            _setup_dev(root)
        sysfs = next((d[1] for d in spec if d[0] == "sysfs" and len(d) == 2), None)
        if rootfs and sysfs:  # as runc: read-only unless privileged; the host's bound if refused
            ro = MS_RDONLY if sysfs != "rw" else 0
            try:
                root.mount("sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, None)
            except OSError:
                root.bind("/sys", "sys", bool(ro))
        for d in spec:
            if d[0] == "mount":
                root.bind(d[2], d[3], d[1] == "1")
        os.close(root.fd)
        if rootfs:
            os.chdir(target)
            _check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
            _check(libc.umount2(b".", MNT_DETACH), "umount old root")
            os.chdir("/")
            if "readonly_rootfs" in keys:
                _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    if tty_sock >= 0:
        _terminal_to(tty_sock)
    uid = int(one["uid"][0]) if "uid" in one else None
    caps = int(one["caps"][0], 16) if "caps" in one else None
    if caps is not None:
        for c in range(64):
            if not caps & (1 << c):
                libc.prctl(PR_CAPBSET_DROP, c, 0, 0, 0)
    if os.geteuid() == 0:
        if "groups" in one or "gid" in one:
            groups = one.get("groups") or [""]
            os.setgroups([int(g) for g in groups[0].split(",") if g])
        if "gid" in one:
            os.setgid(int(one["gid"][0]))
        if uid is not None:
            os.setuid(uid)
    if caps is not None and (uid is None or uid == 0):
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        lo, hi = caps & 0xFFFFFFFF, caps >> 32
        data = (ctypes.c_uint32 * 6)(lo, lo, lo, hi, hi, hi)
        _check(libc.syscall(SYS_CAPSET, header, data), "capset")
    if "nnp" in keys:
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    cwd = one.get("cwd", ["/"])[0]
    if rootfs:
        os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)
    argv = [d[1] if len(d) > 1 else "" for d in spec if d[0] == "arg"]
    os.execvp(argv[0], argv)


def cmd_enter(args: list[str]) -> None:
    import warnings  # noqa: F401  (os.execvp imports it lazily, after the stdlib is out of reach)

    os.closerange(3, 1 << 20)  # as pkshim.c: no fd of the agent reaches the container
    opts, cmd = getopt.getopt(args, "t:c:u:g:G:nw:C:T")
    o = dict(opts)
    for k, v in opts:
        if k == "-C":
            with open(v, "w") as f:
                f.write(str(os.getpid()))
    target = o["-t"]
    fds = []
    for kind in ("ipc", "uts", "net", "pid", "mnt"):
        mine, theirs = os.stat(f"/proc/self/ns/{kind}"), os.stat(f"/proc/{target}/ns/{kind}")
        if (mine.st_ino, mine.st_dev) != (theirs.st_ino, theirs.st_dev):
            fds.append(os.open(f"/proc/{target}/ns/{kind}", os.O_RDONLY))
    for fd in fds:
        _check(libc.setns(fd, 0), "setns")
        os.close(fd)
    child = os.fork()
    if child:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _, st = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(st)
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code if code >= 0 else 128 - code)
    if "-T" in o:  # as pkshim.c: a session of its own, the terminal on stdin as its ctty
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    caps = int(o["-c"], 16) if "-c" in o else None
    uid = int(o["-u"]) if "-u" in o else None
    if caps is not None:
        for c in range(64):
            if not caps & (1 << c):
                libc.prctl(PR_CAPBSET_DROP, c, 0, 0, 0)
    if uid is not None:
        os.setgroups([int(g) for g in o.get("-G", "").split(",") if g])
        os.setgid(int(o.get("-g", "0")))
        os.setuid(uid)
    if caps is not None and (uid is None or uid == 0):
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        lo, hi = caps & 0xFFFFFFFF, caps >> 32
        _check(
            libc.syscall(SYS_CAPSET, header, (ctypes.c_uint32 * 6)(lo, lo, lo, hi, hi, hi)),
            "capset",
        )
    if "-n" in o:
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    try:
        os.chdir(o.get("-w", "/"))
    except OSError:
        os.chdir("/")
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores them; the command must not
        signal.signal(sig, signal.SIG_DFL)
    os.execvp(cmd[0], cmd)


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "init":
        try:
            cmd_init(args)
        except OSError as e:
            sys.stderr.write(f"pykubelet: cannot start container: {e}\n")
            sys.exit(126 if isinstance(e, PermissionError) else 127)
    {"pause": cmd_pause, "run": cmd_run, "enter": cmd_enter}[mode](args)


if __name__ == "__main__":
    main()
