"""The cluster's certificates: one CA, the API server's serving cert, and client certs.

`ensure_pki` creates (once) and then re-uses a directory laid out like kubeadm's `pki/`:

    ca.crt / ca.key            self-signed CA, CN "kubelite-ca", 10 years
    server.crt / server.key    API server serving cert, SANs for every address clients dial
    admin.crt / admin.key      client cert CN "kubernetes-admin", O "system:masters"

Keys are EC P-256, PKCS#8 PEM, mode 0600. Files are written atomically (temp file + rename), so a
crash never leaves half a PEM behind. If the serving cert lacks a requested SAN, has expired (or is
about to), or was not issued by the current CA, only it is re-issued; the CA is never replaced while
its certificate and key are both readable and match.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubelite.lib.files import atomic_write

log = logging.getLogger(__name__)

CA_COMMON_NAME = "kubelite-ca"
SERVER_COMMON_NAME = "kube-apiserver"
ADMIN_COMMON_NAME = "kubernetes-admin"
ADMIN_ORGANIZATION = "system:masters"
DEFAULT_IP_SANS: tuple[str, ...] = ("127.0.0.1",)
DEFAULT_DNS_SANS: tuple[str, ...] = (
    "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=730)
RENEW_BEFORE = datetime.timedelta(days=30)
BACKDATE = datetime.timedelta(hours=1)  # tolerate clock skew between host and clients

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Pki:
    """Paths of the cluster's PEM files, plus small readers for the bytes clients embed."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path

    @classmethod
    def at(cls, directory: Path) -> Pki:
        d = Path(directory)
        return cls(directory=d, ca_cert=d / "ca.crt", ca_key=d / "ca.key",
                   server_cert=d / "server.crt", server_key=d / "server.key",
                   admin_cert=d / "admin.crt", admin_key=d / "admin.key")

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    def admin_cert_pem(self) -> bytes:
        return self.admin_cert.read_bytes()

    def admin_key_pem(self) -> bytes:
        return self.admin_key.read_bytes()

    def server_sans(self) -> tuple[list[str], list[str]]:
        """(IP SANs, DNS SANs) of the current serving certificate."""
        return _sans(_load_cert(self.server_cert))


# --- public API -------------------------------------------------------------------------------

def ensure_pki(directory: Path, *, ip_sans: list[str], dns_sans: list[str]) -> Pki:
    """Create or re-use the CA, serving and admin certs under `directory`; see the module docstring."""
    pki = Pki.at(directory)
    if not pki.directory.exists():
        pki.directory.mkdir(mode=0o700, parents=True)
    want_ips = _unique([*(str(ipaddress.ip_address(ip)) for ip in ip_sans), *DEFAULT_IP_SANS])
    want_dns = _unique([*(d.strip().lower() for d in dns_sans if d.strip()), *DEFAULT_DNS_SANS])
    ca_cert, ca_key = _ensure_ca(pki)
    if not _server_cert_ok(pki, ca_cert, want_ips, want_dns):
        _issue_server_cert(pki, ca_cert, ca_key, want_ips, want_dns)
    if not _leaf_ok(pki.admin_cert, pki.admin_key, ca_cert):
        cert_pem, key_pem = _issue_client(ca_cert, ca_key, ADMIN_COMMON_NAME, [ADMIN_ORGANIZATION])
        _write_pair(pki.admin_cert, cert_pem, pki.admin_key, key_pem)
    return pki


def issue_client_cert(pki: Pki, *, common_name: str, organizations: list[str]) -> tuple[bytes, bytes]:
    """A fresh client certificate signed by the cluster CA: (cert PEM, PKCS#8 key PEM). Nothing is written."""
    if not common_name:
        raise ValueError("common_name must not be empty")
    ca_cert = _load_cert(pki.ca_cert)
    ca_key = _load_key(pki.ca_key)
    return _issue_client(ca_cert, ca_key, common_name, organizations)


def server_ssl_context(pki: Pki) -> ssl.SSLContext:
    """TLS 1.2+ server context; client certs are optional but, when sent, must chain to the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    ctx.load_verify_locations(cafile=str(pki.ca_cert))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# --- CA ---------------------------------------------------------------------------------------

def _ensure_ca(pki: Pki) -> tuple[x509.Certificate, PrivateKey]:
    existing = _load_pair(pki.ca_cert, pki.ca_key)
    if existing is not None:
        return existing
    if pki.ca_cert.exists() or pki.ca_key.exists():
        log.warning("CA in %s is unreadable or mismatched; creating a new CA and re-issuing all certs",
                    pki.directory)
    key = _new_key()
    name = _name(CA_COMMON_NAME, [])
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    _write_pair(pki.ca_cert, _cert_pem(cert), pki.ca_key, _key_pem(key))
    for stale in (pki.server_cert, pki.server_key, pki.admin_cert, pki.admin_key):
        stale.unlink(missing_ok=True)
    return cert, key


# --- leaves -----------------------------------------------------------------------------------

def _issue_server_cert(pki: Pki, ca_cert: x509.Certificate, ca_key: PrivateKey,
                       ips: list[str], dns: list[str]) -> None:
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    sans += [x509.DNSName(d) for d in dns]
    key = _new_key()
    builder = _leaf_builder(ca_cert, key, _name(SERVER_COMMON_NAME, []), ExtendedKeyUsageOID.SERVER_AUTH)
    builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_pair(pki.server_cert, _cert_pem(cert), pki.server_key, _key_pem(key))
    log.info("issued API server certificate with SANs %s", ", ".join([*ips, *dns]))


def _issue_client(ca_cert: x509.Certificate, ca_key: PrivateKey, common_name: str,
                  organizations: list[str]) -> tuple[bytes, bytes]:
    key = _new_key()
    builder = _leaf_builder(ca_cert, key, _name(common_name, organizations), ExtendedKeyUsageOID.CLIENT_AUTH)
    cert = builder.sign(ca_key, hashes.SHA256())
    return _cert_pem(cert), _key_pem(key)


def _leaf_builder(ca_cert: x509.Certificate, key: PrivateKey, subject: x509.Name,
                  usage: x509.ObjectIdentifier) -> x509.CertificateBuilder:
    now = _now()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
    )


def _server_cert_ok(pki: Pki, ca_cert: x509.Certificate, ips: list[str], dns: list[str]) -> bool:
    if not _leaf_ok(pki.server_cert, pki.server_key, ca_cert):
        return False
    have_ips, have_dns = pki.server_sans()
    missing = (set(ips) - set(have_ips)) | (set(dns) - set(have_dns))
    if missing:
        log.info("API server certificate lacks SANs %s; re-issuing it", ", ".join(sorted(missing)))
    return not missing


def _leaf_ok(cert_path: Path, key_path: Path, ca_cert: x509.Certificate) -> bool:
    """True if the pair loads, matches, was signed by `ca_cert` and is not about to expire."""
    pair = _load_pair(cert_path, key_path)
    if pair is None:
        return False
    cert = pair[0]
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return cert.not_valid_after_utc - RENEW_BEFORE > _now()


# --- small helpers ----------------------------------------------------------------------------

def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return ips, [d.lower() for d in san.get_values_for_type(x509.DNSName)]


def _name(common_name: str, organizations: Iterable[str]) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, PrivateKey] | None:
    """The (cert, key) pair if both files load and belong together, else None."""
    try:
        cert, key = _load_cert(cert_path), _load_key(key_path)
    except (OSError, ValueError, TypeError):
        return None
    if cert.public_key() != key.public_key():
        return None
    return cert, key


def _write_pair(cert_path: Path, cert_pem: bytes, key_path: Path, key_pem: bytes) -> None:
    atomic_write(key_path, key_pem, 0o600)
    atomic_write(cert_path, cert_pem, 0o644)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
