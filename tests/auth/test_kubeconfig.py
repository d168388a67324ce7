"""The kubeconfig reader behind the webhook clients: what it takes, and clear refusals."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from pykubelet.auth.kubeconfig import load_kubeconfig
from pykubelet.core.errors import InvalidInput


def _write(path: Path, user: dict[str, object], **cluster: object) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443", **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_relative_files_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    kc = load_kubeconfig(
        _write(
            tmp_path / "sub" / "kc",
            {"client-certificate": "pki/c.pem", "client-key": "/abs/k.pem"},
            **{"certificate-authority": "ca.crt"},
        )
    )
    assert kc.server == "https://10.0.0.1:6443"
    assert kc.ca_file == str(tmp_path / "sub" / "ca.crt")
    assert kc.cert_file == str(tmp_path / "sub" / "pki" / "c.pem")
    assert kc.key_file == "/abs/k.pem"
    assert kc.files() == (
        str(tmp_path / "sub" / "kc"),
        str(tmp_path / "sub" / "ca.crt"),
        str(tmp_path / "sub" / "pki" / "c.pem"),
        "/abs/k.pem",
    )


def test_inline_data_and_token(tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\n"
    kc = load_kubeconfig(
        _write(
            tmp_path / "kc",
            {"token": "abc.def"},
            **{"certificate-authority-data": base64.b64encode(pem).decode()},
        )
    )
    assert kc.ca_data == pem
    assert kc.bearer_token() == "abc.def"


@pytest.mark.parametrize(
    ("user", "cluster", "message"),
    [
        ({"exec": {"command": "x"}}, {}, "'exec' are not supported"),
        ({"token": 5}, {}, "token must be a string"),
        ({}, {"server": "10.0.0.1:6443"}, "https:// URL"),
        ({}, {"certificate-authority-data": "%%%"}, "certificate-authority-data is not base64"),
    ],
)
def test_bad_kubeconfigs_are_refused_by_name(
    tmp_path: Path, user: dict[str, object], cluster: dict[str, object], message: str
) -> None:
    path = _write(tmp_path / "kc", user, **cluster)
    with pytest.raises(InvalidInput) as err:
        load_kubeconfig(path)
    assert message in str(err.value)
    assert path in str(err.value)
    assert err.value.field == "kubeconfig"


def test_a_missing_kubeconfig_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cannot read kubeconfig .*nope"):
        load_kubeconfig(str(tmp_path / "nope"))
