"""The long fuzzing run: the targets of ``tests/security/test_fuzz.py`` (SPDY session and frame
decoder, WebSocket channel codec, resize decoder, path cleaner and router, pod manifest as JSON
and as YAML text, token file), ``--runs`` inputs each, coverage-guided by atheris (libFuzzer)
over the instrumented ``pykubelet`` package.

The invariant is the one the CI run checks with hypothesis (the same test bodies are called
here, undecorated): a value or the parser's own error, nothing else. A crash is any other
exception (libFuzzer saves the input under ``--artifacts``); a hang is one input taking more
than ``--timeout`` seconds. Each target runs in ``--jobs`` processes with different seeds,
starting from a small corpus of valid inputs so the mutations reach past the framing.

    .venv/bin/pip install -e '.[fuzz]'   # atheris: wheels for CPython 3.11 on PyPI
    .venv/bin/python bench/bench_fuzz.py [--runs 1000000] [--jobs 2] [--targets NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(os.environ.get("PYKUBELET_TREE") or Path(__file__).resolve().parent.parent)

TARGETS = (
    "spdy_session",
    "spdy_frame_decoder",
    "websocket_channel_codec",
    "resize_decoder",
    "path_cleaner_and_router",
    "manifest_parser",
    "manifest_yaml_text",
    "token_file_parser",
    "lean_request_head",
)


# --------------------------------------------------------------------------- one target (child)


def _seeds(name: str) -> list[bytes]:
    """Valid inputs to start from: the mutations then explore around real protocol data."""
    from tests.security.test_fuzz import _frame, _header_block

    syn = (1).to_bytes(4, "big") + bytes(6) + _header_block(
        [(b"streamtype", b"stdout"), (b"port", b"80"), (b"requestid", b"0")]
    )  # fmt: skip
    spdy = [
        _frame(True, 1, 0, syn),  # SYN_STREAM
        _frame(True, 3, 0, (1).to_bytes(4, "big") + (5).to_bytes(4, "big")),  # RST_STREAM
        _frame(True, 6, 0, (7).to_bytes(4, "big")),  # PING
        _frame(True, 4, 0, (1).to_bytes(4, "big") + (1 << 24 | 7).to_bytes(4, "big") + bytes(4)),
        _frame(True, 7, 0, bytes(8)),  # GOAWAY
        _frame(True, 9, 0, (1).to_bytes(4, "big") + (1024).to_bytes(4, "big")),
        _frame(False, 1, 1, b"hello"),  # DATA with FIN
    ]
    if name == "spdy_session":
        return [bytes([8]) + b"".join(spdy), bytes([1]) + spdy[0] + spdy[6] + spdy[1]]
    if name == "spdy_frame_decoder":
        return [b"".join(spdy), *spdy]
    if name == "websocket_channel_codec":
        return [b"\x00\x00\x00ls\n", b'\x01\x01\x04{"Width":80,"Height":24}', b"\x02\x01MQ=="]
    if name == "resize_decoder":
        return [b'\x03{"Width":80,"Height":24}\n{"Width":1,"Height":2}', b"\x01{}"]
    if name == "path_cleaner_and_router":
        return [
            p.encode()
            for p in (
                "/pods",
                "/exec/default/web/app?command=ls&stdout=1",
                "/containerLogs/ns/p/c?tailLines=5",
                "/./%5Cevil.example",
                "/a/../b/%2e%2e/%ff//x",
                "/stats/summary/",
                "/debug/pprof/profile?seconds=1",
            )
        ]
    if name in ("manifest_parser", "manifest_yaml_text"):
        import yaml

        docs = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "examples/pods").glob("*"))]
        if name == "manifest_parser":
            return [json.dumps(d).encode() for d in docs]
        return [p.read_bytes() for p in sorted((ROOT / "examples/pods").glob("*"))]
    if name == "lean_request_head":
        return [  # the first byte: 1 = after a valid request line, 2 = a Host field last
            b"\x01Host: n\r\nUser-Agent: kube-probe/1.20\r\n\r\n",
            b"\x03Accept: */*\r\nConnection: keep-alive",
            b"\x00GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\nX: a, b\r\n\r\nGET /",
        ]
    if name == "token_file_parser":
        return [b'tok1,alice,1001,"system:masters,dev"\n tok2 , bob ,1002\n\n"a""b",c,3\n']
    raise ValueError(f"unknown target {name!r}")


def _target(name: str) -> Callable[[bytes], None]:
    """The test body of ``tests/security/test_fuzz.py`` for ``name``, fed from raw bytes."""
    import atheris

    with atheris.instrument_imports(include=["pykubelet"]):
        from pykubelet.streaming import WsProtocol
        from tests.security import test_fuzz as t

    def body(test: Callable[..., None]) -> Callable[..., None]:
        inner: Callable[..., None] = test.hypothesis.inner_test  # type: ignore[attr-defined]
        return inner

    protocols = list(WsProtocol)

    def spdy_session(data: bytes) -> None:
        split = (data[0] % 64 + 1) if data else 1
        body(t.test_spdy_session)([data[1:]], split)

    def websocket_channel_codec(data: bytes) -> None:
        if len(data) < 2:
            return
        msg: bytes | str = data[2:] if data[1] & 1 else data[2:].decode("utf-8", "replace")
        body(t.test_websocket_channel_codec)(protocols[data[0] % len(protocols)], msg)

    def resize_decoder(data: bytes) -> None:
        if not data:
            return
        n = data[0] % 8 + 1
        rest = data[1:]
        step = max(1, len(rest) // n)
        body(t.test_resize_decoder)([rest[i : i + step] for i in range(0, len(rest), step)])

    def lean_request_head(data: bytes) -> None:
        # the input is the head (its lines come from the bytes themselves); the first byte
        # chooses whether it follows a valid request line, so that mutations explore the
        # header fields rather than only the first four bytes
        if not data:
            return
        prefix = "GET /healthz HTTP/1.1\r\n" if data[0] & 1 else ""
        head = prefix + data[1:].decode("latin-1")
        body(t.test_lean_request_head)(head, bool(data[0] & 2), [], [], "", b"")

    def manifest_parser(data: bytes) -> None:
        try:
            doc = json.loads(data)
        except ValueError:
            return
        body(t.test_manifest_parser)(doc)

    def text(test: Callable[..., None]) -> Callable[[bytes], None]:
        return lambda data: body(test)(data.decode("utf-8", "replace"))

    targets: dict[str, Callable[[bytes], None]] = {
        "spdy_session": spdy_session,
        "spdy_frame_decoder": lambda data: body(t.test_spdy_frame_decoder)(data),
        "websocket_channel_codec": websocket_channel_codec,
        "resize_decoder": resize_decoder,
        "path_cleaner_and_router": text(t.test_path_cleaner_and_router),
        "manifest_parser": manifest_parser,
        "manifest_yaml_text": text(t.test_manifest_yaml_text),
        "token_file_parser": text(t.test_token_file_parser),
        "lean_request_head": lean_request_head,
    }
    return targets[name]


def run_one(name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    sys.path.insert(0, str(ROOT))
    fn = _target(name)
    atheris.Setup([sys.argv[0], *libfuzzer_args], fn)
    atheris.Fuzz()


# --------------------------------------------------------------------------- driver


_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_COV = re.compile(r"#\d+\s+(?:DONE|pulse|NEW|REDUCE)\s+cov: (\d+)")


def _launch(
    name: str, runs: int, seed: int, corpus: Path, a: argparse.Namespace
) -> subprocess.Popen[str]:
    args = [
        f"-runs={runs}",
        f"-seed={seed}",
        f"-timeout={a.timeout}",
        "-rss_limit_mb=2048",
        "-max_len=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={a.artifacts}/{name}-",
        str(corpus),
    ]
    return subprocess.Popen(
        [sys.executable, __file__, "--child", name, "--", *args],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=1_000_000, help="inputs per target, all jobs")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes per target")
    p.add_argument("--timeout", type=int, default=2, help="seconds one input may take")
    p.add_argument("--targets", nargs="*", default=list(TARGETS), choices=TARGETS)
    p.add_argument("--artifacts", default=str(Path(tempfile.gettempdir()) / "pykubelet-fuzz"))
    p.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    a, rest = p.parse_known_args()
    if a.child:
        run_one(a.child, [r for r in rest if r != "--"])
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: .venv/bin/pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    Path(a.artifacts).mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    print(f"{'target':<26} {'inputs':>9} {'seconds':>8} {'µs/input':>9} {'cov':>6} "
          f"{'crashes':>8} {'hangs':>6}")  # fmt: skip
    failed = 0
    for name in a.targets:
        with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
            corpora = []
            for j in range(a.jobs):
                corpus = Path(tmp) / str(j)
                corpus.mkdir()
                for i, seed in enumerate(_seeds(name)):
                    (corpus / f"seed-{i}").write_bytes(seed)
                corpora.append(corpus)
            t0 = time.monotonic()
            cpu0 = os.times()
            share = -(-a.runs // a.jobs)
            procs = [_launch(name, share, 1 + j, corpora[j], a) for j in range(a.jobs)]
            runs = crashes = hangs = cov = 0
            for proc in procs:
                _, err = proc.communicate()
                done = _DONE.search(err)
                runs += int(done.group(1)) if done else 0
                covs = _COV.findall(err)
                cov = max(cov, int(covs[-1]) if covs else 0)
                if "ERROR: libFuzzer: timeout" in err:
                    hangs += 1
                elif proc.returncode != 0:
                    crashes += 1
                if proc.returncode != 0:
                    print(err[-4000:], file=sys.stderr)
            wall = time.monotonic() - t0
            cpu1 = os.times()
            cpu = (cpu1.children_user - cpu0.children_user) + (
                cpu1.children_system - cpu0.children_system
            )
            failed += bool(crashes or hangs)
            print(f"{name:<26} {runs:>9} {wall:>8.0f} {cpu / max(runs, 1) * 1e6:>9.1f} "
                  f"{cov:>6} {crashes:>8} {hangs:>6}", flush=True)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
