"""Unit tests for kubelite.cluster.pki: layout, SANs, re-use, selective re-issue, client certs."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubelite.cluster.pki import Pki, ensure_pki, issue_client_cert, server_ssl_context

UPSTREAM_DNS = {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local"}


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ({str(i) for i in san.get_values_for_type(x509.IPAddress)},
            set(san.get_values_for_type(x509.DNSName)))


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(tmp_path / "pki", ip_sans=["10.96.0.1", "192.168.1.5"], dns_sans=["node-a"])


def test_layout_and_key_modes(pki: Pki) -> None:
    for path in (pki.ca_cert, pki.server_cert, pki.admin_cert):
        assert path.is_file()
    for key in (pki.ca_key, pki.server_key, pki.admin_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list(pki.directory.glob(".*.tmp"))


def test_ca_is_a_ten_year_ca(pki: Pki) -> None:
    ca = _cert(pki.ca_cert)
    assert _attr(ca.subject, NameOID.COMMON_NAME) == ["kubelite-ca"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650


def test_serving_cert_sans_and_chain(pki: Pki) -> None:
    server, ca = _cert(pki.server_cert), _cert(pki.ca_cert)
    ips, dns = _sans(server)
    assert ips == {"10.96.0.1", "192.168.1.5", "127.0.0.1"}
    assert dns == UPSTREAM_DNS | {"node-a"}
    server.verify_directly_issued_by(ca)
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days >= 365


def test_admin_cert_identity(pki: Pki) -> None:
    admin = _cert(pki.admin_cert)
    assert _attr(admin.subject, NameOID.COMMON_NAME) == ["kubernetes-admin"]
    assert _attr(admin.subject, NameOID.ORGANIZATION_NAME) == ["system:masters"]
    eku = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    admin.verify_directly_issued_by(_cert(pki.ca_cert))


def test_second_call_reuses_everything(pki: Pki) -> None:
    before = {p: p.read_bytes() for p in pki.directory.iterdir()}
    again = ensure_pki(pki.directory, ip_sans=["192.168.1.5"], dns_sans=["NODE-A"])
    assert again == pki
    assert {p: p.read_bytes() for p in pki.directory.iterdir()} == before


def test_new_san_reissues_only_the_serving_cert(pki: Pki) -> None:
    ca, admin, old_server = pki.ca_cert.read_bytes(), pki.admin_cert.read_bytes(), pki.server_cert.read_bytes()
    ensure_pki(pki.directory, ip_sans=["10.0.0.7"], dns_sans=["node-b"])
    assert pki.ca_cert.read_bytes() == ca
    assert pki.admin_cert.read_bytes() == admin
    assert pki.server_cert.read_bytes() != old_server
    ips, dns = _sans(_cert(pki.server_cert))
    assert "10.0.0.7" in ips and "node-b" in dns
    _cert(pki.server_cert).verify_directly_issued_by(_cert(pki.ca_cert))


def test_missing_admin_cert_is_reissued_from_same_ca(pki: Pki) -> None:
    ca = pki.ca_cert.read_bytes()
    pki.admin_key.unlink()
    ensure_pki(pki.directory, ip_sans=[], dns_sans=[])
    assert pki.ca_cert.read_bytes() == ca
    _cert(pki.admin_cert).verify_directly_issued_by(_cert(pki.ca_cert))


def test_invalid_ip_san_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ensure_pki(tmp_path, ip_sans=["not-an-ip"], dns_sans=[])


def test_issue_client_cert_for_a_node(pki: Pki) -> None:
    cert_pem, key_pem = issue_client_cert(pki, common_name="system:node:n1", organizations=["system:nodes"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert _attr(cert.subject, NameOID.COMMON_NAME) == ["system:node:n1"]
    assert _attr(cert.subject, NameOID.ORGANIZATION_NAME) == ["system:nodes"]
    cert.verify_directly_issued_by(_cert(pki.ca_cert))
    assert b"PRIVATE KEY" in key_pem


def test_server_ssl_context(pki: Pki) -> None:
    ctx = server_ssl_context(pki)
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.cert_store_stats()["x509_ca"] == 1


def test_lost_ca_key_regenerates_everything(pki: Pki) -> None:
    old_ca = pki.ca_cert.read_bytes()
    pki.ca_key.unlink()
    ensure_pki(pki.directory, ip_sans=[], dns_sans=[])
    assert pki.ca_cert.read_bytes() != old_ca
    ca = _cert(pki.ca_cert)
    _cert(pki.server_cert).verify_directly_issued_by(ca)
    _cert(pki.admin_cert).verify_directly_issued_by(ca)
