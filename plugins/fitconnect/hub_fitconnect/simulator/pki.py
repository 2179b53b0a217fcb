"""The simulator's stand-in for the V-PKI: certificates (``x5c``) for the destinations' public keys.

FIT-Connect publishes a destination's keys with their certificate chain; the simulator issues each key a
certificate from its own CA so the published JWKs have the shape of the real ones (``x5c`` present).
"""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwcrypto import jwk

from .. import jose


@functools.cache
def _ca_key() -> rsa.RSAPrivateKey:
    # One CA key per process: simulators started side by side (tests) share it, as they share a V-PKI.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Authority:
    """A CA that certifies public keys by kid (issued once, then kept)."""

    def __init__(self) -> None:
        self._key = _ca_key()
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FIT-Connect Simulator CA")])
        self._root = self._certificate(self._name, self._key.public_key(), ca=True)
        self._issued: dict[str, list[str]] = {}

    def _certificate(self, subject: x509.Name, public: rsa.RSAPublicKey, *, ca: bool) -> x509.Certificate:
        now = datetime.now(UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=730))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )

    def published(self, key: jwk.JWK) -> dict[str, object]:
        """A public key as FIT-Connect publishes it: the JWK with its certificate chain (``x5c``)."""
        return jose.public_jwk(key) | {"x5c": self.chain(key)}

    def chain(self, key: jwk.JWK) -> list[str]:
        """``x5c`` for a public key: its certificate and the CA's, base64 DER."""
        kid = jose.key_id(key)
        if kid not in self._issued:
            public = serialization.load_pem_public_key(key.export_to_pem())
            if not isinstance(public, rsa.RSAPublicKey):
                raise ValueError("FIT-Connect keys are RSA keys")
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, kid)])
            leaf = self._certificate(subject, public, ca=False)
            self._issued[kid] = [
                base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
                for c in (leaf, self._root)
            ]
        return self._issued[kid]
