"""TLS for the agent's streaming server: a serving certificate for the node's addresses from the
cluster CA, and client-certificate checking against the same CA.

Where the material comes from is a `TlsSource` (a function of the node's config, called when the
server starts, because the node's address is only known then):
- `from_cluster_pki(pki)`: an agent running where the cluster CA key is readable (in-process
  hollow nodes, tests, a single-machine cluster) issues its own serving cert, as upstream's
  kubelet would get one through a CSR approved by the cluster;
- `from_files(cert, key, client_ca)`: certificates provisioned by the operator.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubelite.agent.config import NodeConfig
from kubelite.cluster.pki import Pki
from kubelite.lib.tlsfiles import load_cert_chain

TlsSource = Callable[[NodeConfig], ssl.SSLContext]
VALIDITY = datetime.timedelta(days=365)
BACKDATE = datetime.timedelta(hours=1)


def issue_serving_cert(pki: Pki, *, common_name: str, ips: list[str], dns: list[str]) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) for a TLS server at `ips`/`dns`, signed by the cluster CA."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pki.ca_key}: expected an EC private key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ips)]
    sans += [x509.DNSName(name) for name in dict.fromkeys(dns) if name]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(*, cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes) -> ssl.SSLContext:
    """TLS 1.2+; client certificates are optional at the TLS layer (the server answers 401 without
    one) but must chain to the CA when sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_cert_chain(context, cert_pem, key_pem)
    context.load_verify_locations(cadata=client_ca_pem.decode())
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def from_cluster_pki(pki: Pki) -> TlsSource:
    def make(node: NodeConfig) -> ssl.SSLContext:
        cert, key = issue_serving_cert(pki, common_name=f"system:node:{node.name}", ips=[node.internal_ip],
                                       dns=[node.name])
        return server_context(cert_pem=cert, key_pem=key, client_ca_pem=pki.ca_pem())

    return make


def from_files(cert: Path, key: Path, client_ca: Path) -> TlsSource:
    def make(node: NodeConfig) -> ssl.SSLContext:
        return server_context(cert_pem=cert.read_bytes(), key_pem=key.read_bytes(),
                              client_ca_pem=client_ca.read_bytes())

    return make
