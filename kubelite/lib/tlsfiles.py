"""TLS material held in memory, for `ssl.SSLContext`, which only loads certificates from files."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path


def load_cert_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """`context.load_cert_chain` from PEM bytes, through a private temp dir removed at once."""
    with tempfile.TemporaryDirectory(prefix="kubelite-tls-") as tmp:
        cert_path, key_path = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(str(cert_path), str(key_path))
