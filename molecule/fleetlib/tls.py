"""TLS for the tests' own clients: a certificate from the fleet's CA (the pki role's, on the control node),
and one from a CA nobody trusts, to show it is refused."""

from __future__ import annotations

import datetime
import functools
from pathlib import Path

from celery_fleet_app.config import TlsConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleetlib.project import scenario_inventory

# The name every proxy's certificate carries (haproxy_tls_server_name), which clients verify.
PROXY_SERVER_NAME = "amqp.celery-fleet"


def fleet_ca_dir(inventory: Path | None = None) -> Path:
    """Where the pki role keeps the deployment's CA: <inventory>/.secrets/pki (default: the scenario's)."""
    return (inventory or scenario_inventory()) / ".secrets" / "pki"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _client(
    ca_dir: Path, client: str, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str
) -> TlsConfig:
    """A client key and certificate signed by `ca_key`, in <inventory>/.secrets/<client>, trusting the fleet's CA."""
    directory = ca_dir.parent / client
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, key, ca_cert.subject, ca_key, ca=False)
    _write_key(key, directory / "client.key")
    (directory / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsConfig(
        ca_file=str(ca_dir / "ca.crt"),
        cert_file=str(directory / "client.crt"),
        key_file=str(directory / "client.key"),
        server_name=PROXY_SERVER_NAME,
    )


@functools.cache
def fleet_client_tls(inventory: Path | None = None) -> TlsConfig:
    """A client certificate the fleet's CA signed, as an application's publisher would hold (default: the
    scenario's inventory's CA)."""
    ca_dir = fleet_ca_dir(inventory)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return _client(ca_dir, "test-client", ca_cert, ca_key, "failover-tests")


@functools.cache
def foreign_client_tls() -> TlsConfig:
    """A client certificate from a CA of its own, which the fleet does not trust; it still trusts the fleet's CA
    (so any refusal is the server's)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Some other CA", ca_key, _name("Some other CA"), ca_key, ca=True)
    return _client(fleet_ca_dir(), "foreign-client", ca_cert, ca_key, "not-in-the-fleet")
