"""The image settings of KubeletConfiguration: defaults as upstream, flags, one line per bad
field naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykubelet.config import ConfigError, load_config


def _load(tmp_path: Path, *flags: str) -> object:
    return load_config(["--root-dir", str(tmp_path), "--node-name", "n", *flags])


def test_defaults_are_upstreams(tmp_path: Path) -> None:
    cfg = load_config(["--root-dir", str(tmp_path), "--node-name", "n"])
    assert (cfg.image_gc_high_threshold_percent, cfg.image_gc_low_threshold_percent) == (85, 80)
    assert cfg.image_minimum_gc_age_s == 120.0
    assert cfg.serialize_image_pulls is True and cfg.max_parallel_image_pulls == 0
    assert cfg.docker_config_file == "" and cfg.image_registry_ca_file == ""


def test_flags_and_file(tmp_path: Path) -> None:
    conf = tmp_path / "k.yaml"
    conf.write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "serializeImagePulls: false\nmaxParallelImagePulls: 3\nimageMinimumGCAge: 5m\n"
        "dockerConfigFile: creds.json\n"
    )
    cfg = load_config(
        [
            "--config",
            str(conf),
            "--root-dir",
            str(tmp_path),
            "--node-name",
            "n",
            "--image-gc-high-threshold",
            "90",
            "--image-gc-low-threshold",
            "70",
        ]
    )
    assert cfg.serialize_image_pulls is False and cfg.max_parallel_image_pulls == 3
    assert cfg.image_minimum_gc_age_s == 300.0
    assert (cfg.image_gc_high_threshold_percent, cfg.image_gc_low_threshold_percent) == (90, 70)
    assert Path(cfg.docker_config_file).is_absolute()


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (
            ["--image-gc-high-threshold", "101"],
            "--image-gc-high-threshold: must be between 0 and 100",
        ),
        (
            ["--image-gc-high-threshold", "50", "--image-gc-low-threshold", "50"],
            "imageGCLowThresholdPercent: must be less than imageGCHighThresholdPercent (50 >= 50)",
        ),
        (["--minimum-image-ttl-duration=-1m"], "imageMinimumGCAge: must not be negative"),
        (["--serialize-image-pulls", "maybe"], "--serialize-image-pulls"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, flags: list[str], problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, *flags)
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


def test_parallel_pulls_need_serialize_off(tmp_path: Path) -> None:
    conf = tmp_path / "k.yaml"
    conf.write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "maxParallelImagePulls: 2\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(["--config", str(conf), "--root-dir", str(tmp_path), "--node-name", "n"])
    assert e.value.problems == (
        "maxParallelImagePulls: cannot be larger than 1 unless serializeImagePulls is false",
    )
