"""A throwaway certificate authority for tests of MQTT over TLS against a real Mosquitto."""

from __future__ import annotations

import getpass
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genedge.localservices import Mosquitto, free_port, wait_port


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
              issuer_key: ec.EllipticCurvePrivateKey, *, server: bool = False) -> x509.Certificate:
    """A CA certificate (``issuer=None``) or one it signs: a server's for 127.0.0.1/localhost or a client's."""
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if issuer is None:  # the CA
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_pki(d: Path) -> dict[str, Path]:
    """A CA with a server certificate for 127.0.0.1 and a client certificate, as PEM files in ``d``:
    ``ca``, ``server_cert``, ``server_key``, ``client_cert``, ``client_key``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_cert("GenEdge test CA", ca_key, None, ca_key)
    files = {"ca": d / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for who in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = make_cert(f"genedge-{who}", key, ca, ca_key, server=who == "server")
        files[f"{who}_cert"] = d / f"{who}.pem"
        files[f"{who}_key"] = d / f"{who}.key"
        files[f"{who}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{who}_key"].write_bytes(key_pem(key))
    return files


@contextmanager
def tls_mosquitto(workdir: Path, pki: dict[str, Path], extra_conf: str = "") -> Iterator[int]:
    """A real Mosquitto on a loopback TLS listener with the server certificate of ``pki`` and the
    configuration lines ``extra_conf`` (authentication, ACLs); yields its port."""
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"user {getpass.getuser()}\n"
        "persistence false\n"
        f"cafile {pki['ca']}\ncertfile {pki['server_cert']}\nkeyfile {pki['server_key']}\n"
        f"log_dest file {workdir / 'mosquitto.log'}\n"
        + extra_conf
    )
    proc = subprocess.Popen([Mosquitto(port=port, workdir=workdir).binary, "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
