"""Certificates for a node: a CA, the node's serving certificate, client certificates, and the
self-signed serving certificate the kubelet generates when none is configured.

``certs_main(argv)`` is the ``pykubelet certs`` command::

    pykubelet certs ca      --dir DIR [--key-type ec|rsa]   # DIR/ca.crt, DIR/ca.key
    pykubelet certs serving --dir DIR --node-name NAME [--ip IP ...] [--dns NAME ...]
                                                            # DIR/kubelet.crt/.key signed by the CA
    pykubelet certs client NAME [--group GROUP ...] --dir DIR  # DIR/NAME.crt/.key (clientAuth)

Every command takes ``--days``. The CA that signs may be EC or RSA (kubeadm's
``/etc/kubernetes/pki/ca.key`` is RSA 2048): point ``--dir`` at a directory holding its
``ca.crt`` and ``ca.key``. New leaf keys are EC P-256.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pykubelet.core.errors import InvalidInput

__all__ = [
    "CertPair",
    "certs_main",
    "create_ca",
    "create_cert",
    "create_client_cert",
    "create_serving_cert",
    "ensure_node_ca",
    "ensure_self_signed_serving_cert",
    "load_pair",
]

_KEY = ec.SECP256R1()
KEY_TYPES = ("ec", "rsa")
# keys that can sign certificates here (kubeadm's CA is RSA, ours are EC)
SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _new_key(key_type: str) -> SigningKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(_KEY)
    raise InvalidInput(f"unsupported key type {key_type!r}, supported: ec, rsa", field="key-type")


@dataclass(frozen=True, slots=True, kw_only=True)
class CertPair:
    cert_file: str
    key_file: str


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _write_pair(cert: x509.Certificate, key: SigningKey, base: str) -> CertPair:
    os.makedirs(os.path.dirname(base) or ".", mode=0o700, exist_ok=True)
    cert_file, key_file = base + ".crt", base + ".key"
    fd = os.open(key_file + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert_file + ".tmp", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(key_file + ".tmp", key_file)
    os.replace(cert_file + ".tmp", cert_file)
    return CertPair(cert_file=cert_file, key_file=key_file)


def load_pair(pair: CertPair) -> tuple[x509.Certificate, SigningKey]:
    try:
        with open(pair.cert_file, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(pair.key_file, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError) as e:
        raise InvalidInput(f"cannot load {pair.cert_file}/{pair.key_file}: {e}") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidInput(f"{pair.key_file}: only EC and RSA keys can sign certificates here")
    return cert, key


def _builder(
    subject: x509.Name, issuer: x509.Name, key: SigningKey, days: int
) -> x509.CertificateBuilder:
    if days < 1:
        raise InvalidInput(f"must be at least 1, got {days}", field="days")
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _key_usage(*, signs_certs: bool, rsa_key: bool = False) -> x509.KeyUsage:
    """Digital signatures, plus certificate and CRL signing for a CA (and key encipherment for
    an RSA key, as kubeadm's CA has)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=rsa_key,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certs,
        crl_sign=signs_certs,
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(
    directory: str, *, common_name: str = "pykubelet-ca", days: int = 3650, key_type: str = "ec"
) -> CertPair:
    """A self-signed CA at ``directory/ca.crt`` and ``ca.key`` (an EC P-256 or RSA 2048 key)."""
    key = _new_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, name, key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _key_usage(signs_certs=True, rsa_key=isinstance(key, rsa.RSAPrivateKey)), critical=True
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return _write_pair(cert, key, os.path.join(directory, "ca"))


def _leaf(
    ca: CertPair | None,
    subject: x509.Name,
    sans: Sequence[x509.GeneralName],
    ekus: Sequence[x509.ObjectIdentifier],
    base: str,
    days: int,
) -> CertPair:
    key = ec.generate_private_key(_KEY)
    signer: SigningKey
    if ca is None:
        issuer_name, signer = subject, key
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    else:
        ca_cert, signer = load_pair(ca)
        issuer_name = ca_cert.subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
    b = (
        _builder(subject, issuer_name, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
        .add_extension(aki, critical=False)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return _write_pair(b.sign(signer, hashes.SHA256()), key, base)


def _serving_sans(
    node_name: str, ips: Sequence[str] = (), dns: Sequence[str] = ()
) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    addresses: list[str] = ["127.0.0.1", "::1"]
    for name in dict.fromkeys((node_name, "localhost", *dns)):
        try:
            ipaddress.ip_address(name)
            addresses.insert(0, name)
        except ValueError:
            sans.append(x509.DNSName(name))
    for text in ips:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise InvalidInput(f"not an IP address: {text!r}", field="ip") from None
        addresses.append(text)
    for text in dict.fromkeys(str(ipaddress.ip_address(a)) for a in addresses):
        sans.append(x509.IPAddress(ipaddress.ip_address(text)))
    return sans


def create_serving_cert(
    directory: str,
    node_name: str,
    *,
    ca: CertPair | None = None,
    days: int = 365,
    ips: Sequence[str] = (),
    dns: Sequence[str] = (),
) -> CertPair:
    """``directory/kubelet.crt|.key`` for ``node_name``, localhost, 127.0.0.1, ::1 and the extra
    ``ips`` and ``dns`` names, signed by ``ca`` (or self-signed when ``ca`` is None)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@pykubelet")])
    return _leaf(
        ca,
        subject,
        _serving_sans(node_name, ips, dns),
        [ExtendedKeyUsageOID.SERVER_AUTH],
        os.path.join(directory, "kubelet"),
        days,
    )


def create_client_cert(
    directory: str, name: str, groups: Sequence[str] = (), *, ca: CertPair, days: int = 365
) -> CertPair:
    """``directory/<name>.crt|.key``: CN=name, O=each group, EKU clientAuth, signed by ``ca``."""
    if not name:
        raise InvalidInput("a client certificate needs a user name", field="NAME")
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, name))
    safe = name.replace(":", "-").replace("/", "-")
    return _leaf(
        ca,
        x509.Name(attrs),
        (),
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        os.path.join(directory, safe),
        days,
    )


def create_cert(
    directory: str,
    stem: str,
    *,
    ca: CertPair,
    common_name: str,
    organizations: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
    days: int = 365,
) -> CertPair:
    """``directory/<stem>.crt|.key`` signed by ``ca``, for a server (localhost, 127.0.0.1, ::1),
    a client, or both (as a webhook peer or a test harness needs)."""
    if not (server or client):
        raise InvalidInput("a certificate is for a server, a client or both", field="usage")
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    ekus = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    ekus += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    sans = _serving_sans("localhost") if server else ()
    return _leaf(ca, x509.Name(attrs), sans, ekus, os.path.join(directory, stem), days)


def ensure_self_signed_serving_cert(cert_dir: str, node_name: str) -> CertPair:
    """The kubelet's fallback: reuse ``cert_dir/kubelet.crt|.key`` if present, else create."""
    pair = CertPair(
        cert_file=os.path.join(cert_dir, "kubelet.crt"),
        key_file=os.path.join(cert_dir, "kubelet.key"),
    )
    if os.path.exists(pair.cert_file) and os.path.exists(pair.key_file):
        return pair
    return create_serving_cert(cert_dir, node_name)


def ensure_node_ca(cert_dir: str) -> CertPair:
    """The node's own client CA (``cert_dir/ca.crt|.key``): reused if present, else created.
    The server trusts it when no clientCAFile is configured, so ``pykubelet certs client NAME
    --dir <cert_dir>`` issues certificates that work against this node."""
    pair = CertPair(
        cert_file=os.path.join(cert_dir, "ca.crt"), key_file=os.path.join(cert_dir, "ca.key")
    )
    if os.path.exists(pair.cert_file) and os.path.exists(pair.key_file):
        return pair
    return create_ca(cert_dir, common_name="pykubelet-node-ca")


def certs_main(argv: Sequence[str]) -> int:
    """``pykubelet certs …``; returns the exit status."""
    p = argparse.ArgumentParser(prog="pykubelet certs", description="create node certificates")
    sub = p.add_subparsers(dest="cmd", required=True)
    ca = sub.add_parser("ca", help="create a CA (ca.crt, ca.key)")
    ca.add_argument("--dir", default="pki")
    ca.add_argument("--common-name", default="pykubelet-ca")
    ca.add_argument("--key-type", choices=KEY_TYPES, default="ec", help="ec (P-256) or rsa (2048)")
    ca.add_argument("--days", type=int, default=3650, help="validity (default 3650)")
    sv = sub.add_parser("serving", help="create the node's serving certificate")
    sv.add_argument("--dir", default="pki", help="holds ca.crt/ca.key (EC or RSA) and the output")
    sv.add_argument("--node-name", required=True)
    sv.add_argument("--ip", action="append", default=[], help="an extra IP SAN (repeatable)")
    sv.add_argument("--dns", action="append", default=[], help="an extra DNS SAN (repeatable)")
    sv.add_argument("--days", type=int, default=365, help="validity (default 365)")
    cl = sub.add_parser("client", help="create a client certificate (EKU clientAuth)")
    cl.add_argument("name")
    cl.add_argument("--group", action="append", default=[])
    cl.add_argument("--dir", default="pki")
    cl.add_argument("--days", type=int, default=365, help="validity (default 365)")
    args = p.parse_args(list(argv))
    try:
        if args.cmd == "ca":
            out = create_ca(
                args.dir, common_name=args.common_name, days=args.days, key_type=args.key_type
            )
        else:
            ca_pair = CertPair(
                cert_file=os.path.join(args.dir, "ca.crt"),
                key_file=os.path.join(args.dir, "ca.key"),
            )
            if not os.path.exists(ca_pair.cert_file):
                ca_pair = create_ca(args.dir)
                print(f"created CA {ca_pair.cert_file}")
            if args.cmd == "serving":
                out = create_serving_cert(
                    args.dir, args.node_name, ca=ca_pair, days=args.days, ips=args.ip, dns=args.dns
                )
            else:
                out = create_client_cert(
                    args.dir, args.name, args.group, ca=ca_pair, days=args.days
                )
    except InvalidInput as e:
        print(f"pykubelet certs: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out.cert_file} {out.key_file}")
    return 0
