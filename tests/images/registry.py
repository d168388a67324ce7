"""A real Debian ``docker-registry`` (distribution 2.x) on 127.0.0.1 and an ephemeral port, for
tests: plain HTTP, or TLS (our test CA) with htpasswd basic auth. Images go in with ``skopeo``."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pykubelet.security.certs import create_ca, create_serving_cert

__all__ = ["Registry", "start_registry"]

_LISTENING = re.compile(r"msg=\"listening on (127\.0\.0\.1:\d+)")


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    proc: subprocess.Popen[bytes]
    base: Path
    ca_file: str = ""  # set when serving TLS
    user: str = ""
    password: str = ""

    def push_oci(
        self,
        layout: Path,
        tag: str,
        repo_tag: str,
        *,
        all_platforms: bool = False,
        docker_format: bool = False,
    ) -> None:
        """Copy image ``tag`` of an OCI layout directory to ``<host>/<repo_tag>`` (as a Docker
        schema 2 manifest when ``docker_format``)."""
        argv = ["skopeo", "--insecure-policy", "copy", "--quiet"]
        if all_platforms:
            argv.append("--all")
        if docker_format:
            argv += ["--format", "v2s2"]
        if self.user and not self.ca_file:  # a token registry over plain HTTP
            argv += ["--dest-tls-verify=false", "--dest-creds", f"{self.user}:{self.password}"]
        elif self.ca_file:
            certs = self.base / "skopeo-certs"
            certs.mkdir(exist_ok=True)
            (certs / "ca.crt").write_bytes(Path(self.ca_file).read_bytes())
            argv += ["--dest-cert-dir", str(certs), "--dest-creds", f"{self.user}:{self.password}"]
        else:
            argv.append("--dest-tls-verify=false")
        argv += [f"oci:{layout}:{tag}", f"docker://{self.host}/{repo_tag}"]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def push_raw(self, layout: Path, tag: str, repo_tag: str) -> None:
        """Upload an OCI layout's image byte for byte through the distribution API (plain HTTP
        registry): skopeo compresses plain-tar layers on the way, this keeps them as they are."""
        index = json.loads((layout / "index.json").read_text())
        desc = next(
            m
            for m in index["manifests"]
            if m["annotations"]["org.opencontainers.image.ref.name"] == tag
        )
        blobs = layout / "blobs" / "sha256"
        manifest_bytes = (blobs / desc["digest"].split(":")[1]).read_bytes()
        manifest = json.loads(manifest_bytes)
        repo, _, ref = repo_tag.rpartition(":")
        conn = http.client.HTTPConnection(self.host, timeout=30)
        try:
            for d in [manifest["config"], *manifest["layers"]]:
                conn.request("POST", f"/v2/{repo}/blobs/uploads/")
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 202, resp.status
                location = resp.headers["Location"]
                sep = "&" if "?" in location else "?"
                data = (blobs / d["digest"].split(":")[1]).read_bytes()
                path = location.split(self.host, 1)[-1]
                conn.request("PUT", f"{path}{sep}digest={d['digest']}", body=data)
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 201, resp.status
            headers = {"Content-Type": manifest["mediaType"]}
            conn.request("PUT", f"/v2/{repo}/manifests/{ref}", body=manifest_bytes, headers=headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 201, resp.status
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_registry(
    base: Path, *, tls_auth: bool = False, token_realm: str = "", token_ca: str = ""
) -> Registry:
    """Plain HTTP; or TLS + htpasswd (``tls_auth``); or plain HTTP with bearer tokens from
    ``token_realm`` signed by a key ``token_ca`` certifies."""
    base.mkdir(parents=True, exist_ok=True)
    http = 'addr: "127.0.0.1:0"'
    auth = ""
    reg_kw: dict[str, str] = {}
    if tls_auth:
        ca = create_ca(str(base / "ca"), common_name="registry-test-ca")
        serving = create_serving_cert(str(base / "tls"), "localhost", ca=ca)
        http += f"\n  tls: {{certificate: {serving.cert_file}, key: {serving.key_file}}}"
        user, password = "puller", "s3cret-pw"
        htpasswd = base / "htpasswd"
        subprocess.run(
            ["htpasswd", "-Bbc", str(htpasswd), user, password], check=True, capture_output=True
        )
        auth = f"auth:\n  htpasswd: {{realm: test-registry, path: {htpasswd}}}\n"
        reg_kw = {"ca_file": ca.cert_file, "user": user, "password": password}
    if token_realm:
        auth = (
            f"auth:\n  token: {{realm: {token_realm}, service: test-registry, "
            f"issuer: test-issuer, rootcertbundle: {token_ca}}}\n"
        )
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: info}\n"
        f"storage: {{filesystem: {{rootdirectory: {base / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http:\n  {http}\n{auth}"
    )
    log = base / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = _LISTENING.search(log.read_text(errors="replace"))
        if m:
            return Registry(host=m.group(1), proc=proc, base=base, **reg_kw)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"docker-registry did not start: {log.read_text(errors='replace')[-2000:]}")
