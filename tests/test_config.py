"""KubeletConfiguration loading: defaults, precedence, and one line per bad field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pykubelet.config import (
    ConfigError,
    KubeletConfiguration,
    load_config,
    parse_duration,
    parse_quantity,
)

HEAD = "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n"


def write(tmp_path: Path, body: str) -> str:
    p = tmp_path / "kubelet.yaml"
    p.write_text(HEAD + body)
    return str(p)


def problems(argv: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(argv)
    return list(e.value.problems)


def test_defaults_are_the_secure_config_file_defaults() -> None:
    c = load_config(["--node-name", "n1"])
    assert c.address == "0.0.0.0" and c.port == 10250
    assert c.read_only_port == 0
    assert c.healthz_port == 10248 and c.healthz_bind_address == "127.0.0.1"
    assert c.authentication.anonymous.enabled is False
    assert c.authentication.webhook.enabled is True
    assert c.authentication.webhook.cache_ttl_s == 120
    assert c.authorization.mode == "Policy"
    assert c.authorization.webhook.cache_authorized_ttl_s == 300
    assert c.authorization.webhook.cache_unauthorized_ttl_s == 30
    assert c.authorization.policy_file == "/var/lib/pykubelet/policy.yaml"
    assert c.max_pods == 110 and c.runtime == "process"
    assert c.container_log_max_size_bytes == 10 * 1024 * 1024 and c.container_log_max_files == 5
    assert c.streaming_connection_idle_timeout_s == 4 * 3600
    assert c.file_check_frequency_s == 20
    assert c.sync_frequency_s == 60
    assert c.cert_dir == "/var/lib/pykubelet/pki"
    assert c.standalone


def test_file_then_flags_override(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "address: 127.0.0.1\nport: 11250\nmaxPods: 20\nstaticPodPath: /etc/pods\n"
        "authentication:\n  anonymous: {enabled: true}\n  x509: {clientCAFile: /ca.crt}\n"
        "authorization: {mode: AlwaysAllow}\ncontainerLogMaxSize: 1Mi\n"
        "streamingConnectionIdleTimeout: 5m\nrootDir: /tmp/r\nnodeName: Node-A\n",
    )
    c = load_config(["--config", path, "--port", "12250", "--anonymous-auth=false"])
    assert c.address == "127.0.0.1" and c.port == 12250 and c.max_pods == 20
    assert c.authentication.anonymous.enabled is False
    assert c.authentication.x509.client_ca_file == "/ca.crt"
    assert c.authorization.mode == "AlwaysAllow"
    assert c.container_log_max_size_bytes == 1024 * 1024
    assert c.streaming_connection_idle_timeout_s == 300
    assert c.static_pod_path == "/etc/pods" and c.root_dir == "/tmp/r"
    assert c.node_name == "node-a"
    assert c.authorization.policy_file == "/tmp/r/policy.yaml"
    assert c.config_file == path


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, "staticPodPath: pods\nauthentication: {x509: {clientCAFile: pki/ca.crt}}\n"
    )
    c = load_config(
        [
            "--config",
            path,
            "--node-name",
            "n",
            "--tls-cert-file",
            "rel.crt",
            "--tls-private-key-file",
            "/abs.key",
        ]
    )
    assert c.static_pod_path == str(tmp_path / "pods")
    assert c.authentication.x509.client_ca_file == str(tmp_path / "pki" / "ca.crt")
    assert c.tls_cert_file == str(Path.cwd() / "rel.crt") and c.tls_private_key_file == "/abs.key"


def test_json_file_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "k.json"
    p.write_text(
        json.dumps(
            {
                "kind": "KubeletConfiguration",
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "maxPods": 7,
            }
        )
    )
    assert load_config(["--config", str(p), "--node-name", "n"]).max_pods == 7


def test_every_bad_field_is_reported_once_by_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "port: '10250'\nmaxPods: -1\nbogusField: 1\nreadOnlyPort: 70000\n"
        "authentication:\n  anonymous: {enabled: 'yes', extra: 1}\n"
        "authorization: {mode: Sometimes}\nfileCheckFrequency: 20\n"
        "containerLogMaxSize: ten\naddress: localhost\nruntime: docker\n",
    )
    got = problems(["--config", path, "--strict-config"])
    assert got == [
        "bogusField: unknown field",
        "authentication.anonymous.extra: unknown field",
        "port: expected an integer, got string",
        "maxPods: must be > 0, got -1",
        "readOnlyPort: must be between 0 and 65535, got 70000",
        "authentication.anonymous.enabled: expected a boolean, got string",
        "authorization.mode: unsupported value 'Sometimes', supported: AlwaysAllow, Webhook, "
        "Policy",
        "fileCheckFrequency: expected a duration string such as 30s (a bare number is "
        "nanoseconds), got integer",
        "containerLogMaxSize: invalid quantity 'ten' (such as 10Mi, 1G, 1024)",
        "address: not an IP address: 'localhost'",
        "runtime: unsupported value 'docker', supported: process, cri, fake",
    ]


def test_kind_api_version_and_unreadable_files(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("kind: Pod\napiVersion: v1\n")
    assert problems(["--config", str(p)]) == [
        "kind: expected 'KubeletConfiguration', got 'Pod'",
        "apiVersion: expected 'kubelet.config.k8s.io/v1beta1', got 'v1'",
    ]
    p.write_text("a: [\n")
    [line] = problems(["--config", str(p)])
    assert line.startswith(f"{p}: not valid YAML or JSON")
    [line] = problems(["--config", str(tmp_path / "missing.yaml")])
    assert line.startswith("--config: cannot read")


def test_flags_are_validated_too() -> None:
    assert problems(["--port", "x", "--max-pods", "-3", "--authorization-mode", "Nope"]) == [
        "--port: expected an integer: 'x'",
        "--authorization-mode: unsupported value 'Nope', supported: AlwaysAllow, Webhook, "
        "Policy: 'Nope'",
        "--max-pods: must be > 0, got -3: '-3'",
    ]


def test_pod_cidr_is_an_ipv4_network_with_room_for_pods(tmp_path: Path) -> None:
    assert load_config(["--pod-cidr", "10.99.0.0/16"]).pod_cidr == "10.99.0.0/16"
    assert load_config(["--config", write(tmp_path, "podCIDR: 10.98.0.0/24\n")]).pod_cidr == (
        "10.98.0.0/24"
    )
    [small] = problems(["--pod-cidr", "10.99.0.0/30"])
    assert small == "--pod-cidr: too small: a /29 or larger leaves room for pods: '10.99.0.0/30'"
    [v6] = problems(["--pod-cidr", "fd00::/64"])
    assert v6.startswith("--pod-cidr: not an IPv4 CIDR such as 10.88.42.0/24")
    [host_bits] = problems(["--pod-cidr", "10.99.0.1/24"])
    assert "has host bits set" in host_bits


def test_cross_field_rules() -> None:
    assert problems(["--tls-cert-file", "a.crt", "--node-name", "n"]) == [
        "tlsCertFile: tlsCertFile and tlsPrivateKeyFile must be set together"
    ]
    assert problems(["--runtime", "cri", "--node-name", "n"]) == [
        "containerRuntimeEndpoint: required with runtime 'cri'"
    ]


def test_known_unimplemented_upstream_fields_are_accepted_and_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "clusterDNS: [10.0.0.10]\nfeatureGates: {A: true}\n")
    c = load_config(["--config", path, "--node-name", "n"])
    assert c.ignored_fields == ("clusterDNS", "featureGates")


FIXTURES = Path(__file__).resolve().parent / "config_fixtures"


def test_every_v1beta1_field_is_implemented_or_accepted() -> None:
    from pykubelet.config import field_status

    upstream = (FIXTURES / "v1beta1-fields.txt").read_text().split()
    objects = {"authentication", "authorization", "logging"}
    assert [f for f in upstream if f not in objects and field_status(f) == "unknown"] == []
    assert field_status("rotateCertificates") == "implemented"  # node mode, TLS bootstrap
    assert field_status("podPidsLimit") == "implemented"  # pod cgroup pids.max
    assert field_status("maxOpenFiles") == "not enforced"
    assert field_status("port") == "implemented"
    assert field_status("bogus") == "unknown"


def test_unknown_fields_warn_and_strict_refuses(tmp_path: Path) -> None:
    path = write(tmp_path, "bogusField: 1\nauthentication: {x509: {extra: 2}}\nmaxPods: 9\n")
    c = load_config(["--config", path, "--node-name", "n"])
    assert c.unknown_fields == ("bogusField", "authentication.x509.extra")
    assert c.max_pods == 9
    assert problems(["--config", path, "--strict-config"]) == [
        "bogusField: unknown field",
        "authentication.x509.extra: unknown field",
    ]


def test_not_enforced_fields_are_still_type_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "clusterDNS: 10.0.0.10\nfailSwapOn: 'no'\nhttpCheckFrequency: 60\n")
    assert problems(["--config", path]) == [
        "clusterDNS: expected a list of strings, got string",
        "failSwapOn: expected a boolean, got string",
        "httpCheckFrequency: expected a duration string such as 30s, got integer",
    ]


def test_zero_values_take_upstreams_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "port: 0\nmaxPods: 0\naddress: ''\nstreamingConnectionIdleTimeout: 0s\n"
        "fileCheckFrequency: 0s\ncontainerLogMaxSize: ''\nhealthzPort: 0\nreadOnlyPort: 0\n"
        "syncFrequency: 0s\n"
        "authentication: {webhook: {cacheTTL: 0s}}\n"
        "authorization: {mode: '', webhook: {cacheAuthorizedTTL: 0s, cacheUnauthorizedTTL: 0s}}\n",
    )
    c = load_config(["--config", path, "--node-name", "n"])
    assert (c.port, c.max_pods, c.address) == (10250, 110, "0.0.0.0")
    assert c.streaming_connection_idle_timeout_s == 4 * 3600
    assert c.file_check_frequency_s == 20
    assert c.container_log_max_size_bytes == 10 * 1024 * 1024
    assert c.healthz_port == 0 and c.read_only_port == 0  # 0 disables them, as upstream
    assert c.authentication.webhook.cache_ttl_s == 120
    assert c.authorization.mode == "Policy"
    assert c.authorization.webhook.cache_authorized_ttl_s == 300
    assert c.authorization.webhook.cache_unauthorized_ttl_s == 30
    assert c.ignored_fields == () and c.unknown_fields == ()


def _kubeadm_checks(c: KubeletConfiguration) -> None:
    assert c.authorization.mode == "Webhook"
    assert c.authentication.x509.client_ca_file == "/etc/kubernetes/pki/ca.crt"
    assert c.static_pod_path == "/etc/kubernetes/manifests"
    assert c.streaming_connection_idle_timeout_s == 4 * 3600
    assert c.file_check_frequency_s == 20 and c.port == 10250 and c.max_pods == 110
    assert c.authentication.webhook.cache_ttl_s == 120
    assert c.unknown_fields == ()


def test_the_config_kubeadm_1_20_writes_loads() -> None:
    c = load_config(["--config", str(FIXTURES / "kubeadm-1.20.yaml"), "--node-name", "n"])
    _kubeadm_checks(c)
    assert sorted(c.ignored_fields) == [
        "cgroupDriver",
        "clusterDNS",
        "clusterDomain",
        "resolvConf",
    ]


def test_the_config_a_current_kubeadm_writes_loads() -> None:
    c = load_config(["--config", str(FIXTURES / "kubeadm-current.yaml"), "--node-name", "n"])
    _kubeadm_checks(c)
    assert c.logging_format == "text" and c.log_verbosity == 0
    assert sorted(c.ignored_fields) == [
        "cgroupDriver",
        "clusterDNS",
        "clusterDomain",
        "resolvConf",
    ]


def test_upstream_1_20_defaults_load_and_name_what_is_not_enforced() -> None:
    path = str(FIXTURES / "upstream-1.20-defaults.yaml")
    c = load_config(["--config", path, "--node-name", "n"])
    assert c.unknown_fields == ()
    assert (c.port, c.healthz_port, c.max_pods, c.container_log_max_files) == (10250, 10248, 110, 5)
    assert c.authorization.mode == "Webhook" and c.logging_format == "text"
    # upstream defaults that ask for something pykubelet does not do
    for name in ("httpCheckFrequency", "evictionHard", "makeIPTablesUtilChains", "failSwapOn"):
        assert name in c.ignored_fields
    assert c.sync_frequency_s == 60  # the file's 1m, acted on
    # ... and the ones pykubelet's behaviour matches, or that upstream ignores too
    for name in ("cgroupDriver", "podPidsLimit", "cpuCFSQuota", "iptablesDropBit", "resolvConf"):
        assert name not in c.ignored_fields
    assert len(c.ignored_fields) == len(set(c.ignored_fields))  # one warning per field


def test_config_dir_drop_ins_merge_in_lexical_order(tmp_path: Path) -> None:
    base = write(tmp_path, "maxPods: 10\nfeatureGates: {A: true, B: true}\nport: 11000\n")
    d = tmp_path / "kubelet.conf.d"
    (d / "sub").mkdir(parents=True)
    (d / "20-pods.conf").write_text(HEAD + "maxPods: 20\nstaticPodPath: pods\n")
    (d / "10-first.conf").write_text(HEAD + "maxPods: 15\nfeatureGates: {B: false}\n")
    (d / "sub" / "30-port.conf").write_text(HEAD + "port: 12000\n")
    (d / "99-ignored.yaml").write_text(HEAD + "maxPods: 99\n")
    c = load_config(["--config", base, "--config-dir", str(d), "--node-name", "n"])
    assert c.max_pods == 20 and c.port == 12000
    assert c.static_pod_path == str(d / "pods")  # relative to the drop-in
    assert c.config_dir == str(d)
    c = load_config(["--config", base, "--config-dir", str(d), "--max-pods", "3"])
    assert c.max_pods == 3  # flags still win
    (d / "50-bad.conf").write_text("kind: Pod\n")
    assert problems(["--config-dir", str(d)]) == [
        f"{d}/50-bad.conf: kind: expected 'KubeletConfiguration', got 'Pod'",
        f"{d}/50-bad.conf: apiVersion: expected 'kubelet.config.k8s.io/v1beta1', got None",
    ]


def test_docs_list_every_field() -> None:
    from pykubelet.config import IGNORED_FIELDS, config_field_names

    doc = (Path(__file__).resolve().parent.parent / "docs" / "config.md").read_text()
    missing = [f for f in (*config_field_names(), *IGNORED_FIELDS) if f"`{f}`" not in doc]
    assert missing == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("30s", 30), ("2m", 120), ("1h30m", 5400), ("500ms", 0.5), ("1.5h", 5400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_quantity() -> None:
    assert [parse_quantity(q) for q in ("10Mi", "1G", "1024", "1Ki")] == [
        10 * 2**20,
        10**9,
        1024,
        1024,
    ]
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("5 minutes")


def test_configuration_is_frozen() -> None:
    c = KubeletConfiguration()
    with pytest.raises(AttributeError):
        c.port = 1  # type: ignore[misc]


def test_configz_uses_v1beta1_names_and_go_durations() -> None:
    from pykubelet.config import configz, format_duration

    cfg = load_config(["--node-name", "n1", "--streaming-connection-idle-timeout", "90s"])
    doc = configz(cfg)
    assert doc["streamingConnectionIdleTimeout"] == "1m30s"
    assert doc["authentication"]["anonymous"] == {"enabled": False}
    assert doc["containerLogMaxSize"] == "10Mi"
    assert doc["nodeName"] == "n1"
    assert [format_duration(s) for s in (0, 14400, 0.5)] == ["0s", "4h0m0s", "0.5s"]


def test_quantities_are_exact_and_round_up_like_upstream() -> None:
    from pykubelet.api.quantity import parse_quantity as exact
    from pykubelet.config import parse_quantity
    from pykubelet.pods.runtime_config import parse_cpu_millis

    assert parse_quantity("10Mi") == 10 * 2**20
    assert parse_quantity("1.5Gi") == 3 * 2**29
    assert parse_cpu_millis("0.0005", "cpu") == 1  # MilliValue rounds up
    assert parse_cpu_millis("250m", "cpu") == 250
    assert exact("1e3", field="x").value() == 1000
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity("ten")


def test_a_registry_ca_for_the_process_runtime_is_refused_on_cri() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            [
                "--container-runtime-endpoint",
                "unix:///run/containerd/containerd.sock",
                "--image-registry-ca-file",
                "/etc/ca.pem",
            ]
        )
    assert any(p.startswith("imageRegistryCAFile: has no effect") for p in err.value.problems)


def test_sync_frequency_is_a_positive_duration() -> None:
    assert load_config(["--sync-frequency", "5s", "--node-name", "n"]).sync_frequency_s == 5
    assert load_config(["--node-name", "n"]).sync_frequency_s == 60  # upstream's 1m
    assert problems(["--sync-frequency=-1s"]) == ["syncFrequency: must be >= 0"]


def test_node_mode_change_detection_and_max_images(tmp_path: Path) -> None:
    c = load_config(["--node-name", "n"])
    assert c.config_map_and_secret_change_detection_strategy == "Watch"
    assert c.node_status_max_images == 50
    path = write(
        tmp_path, "configMapAndSecretChangeDetectionStrategy: Get\nnodeStatusMaxImages: -1\n"
    )
    c = load_config(["--config", path])
    assert c.config_map_and_secret_change_detection_strategy == "Get"
    assert c.node_status_max_images == -1
    path = write(
        tmp_path, "configMapAndSecretChangeDetectionStrategy: ''\nnodeStatusMaxImages: 0\n"
    )
    c = load_config(["--config", path])
    assert c.config_map_and_secret_change_detection_strategy == "Watch"  # "" is the default
    assert c.node_status_max_images == 0  # none, as upstream's explicit 0
    path = write(
        tmp_path, "configMapAndSecretChangeDetectionStrategy: Cache\nnodeStatusMaxImages: -2\n"
    )
    assert problems(["--config", path]) == [
        "configMapAndSecretChangeDetectionStrategy: 'Cache' (a TTL cache of GETs) is not "
        "implemented, supported: Watch, Get",
        "nodeStatusMaxImages: must be -1 (no limit) or >= 0, got -2",
    ]
