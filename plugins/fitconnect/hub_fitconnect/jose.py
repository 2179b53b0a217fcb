"""FIT-Connect's JOSE layer: its keys, JWE (RSA-OAEP-256 / A256GCM) and the signed events (SET, PS512).

Built on jwcrypto, which takes FIT-Connect's keys as they are (``key_ops`` ``wrapKey``/``unwrapKey``,
``verify``/``sign``). Everything a token can be wrong in ends in one exception type, ``JoseError``, with a
``reason`` code the callers map to an answer (a reject's problem, a 422) without parsing messages.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException
from pydantic import ValidationError

from .wire import (
    ACCEPT_SUBMISSION,
    REJECT_SUBMISSION,
    SET_PAYLOAD_SCHEMA,
    SUBMIT_EVENT_SCHEMA,
    SUBMIT_SUBMISSION,
    AuthenticationTags,
    EventClaims,
    Problem,
)

ENCRYPTION_ALG = "RSA-OAEP-256"
CONTENT_ENCRYPTION = "A256GCM"
SIGNATURE_ALG = "PS512"
SET_TYPE = "secevent+jwt"
PRODUCTION_KEY_SIZE = 4096

Reason = Literal[
    "malformed",  # not a compact JWE/JWS, undecodable header or payload
    "unknown-kid",  # no key with the header's kid
    "unsupported-algorithm",  # alg/enc (or zip) other than FIT-Connect's
    "decryption-failed",  # key unwrap, ciphertext or authentication tag do not check out
    "wrong-type",  # a SET without typ secevent+jwt
    "bad-signature",  # the signature does not verify with the named key
    "invalid-claims",  # a SET missing claims, or not exactly one event
]


class JoseError(Exception):
    """A token that cannot be used; ``reason`` says why (see ``Reason``)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


# -- keys -------------------------------------------------------------------------------------------


def _generate(size: int, kid: str | None, alg: str, use: str, operation: str) -> jwk.JWK:
    kid = kid or str(uuid.uuid4())
    return jwk.JWK.generate(kty="RSA", size=size, kid=kid, alg=alg, use=use, key_ops=[operation])


def generate_encryption_key(*, size: int = PRODUCTION_KEY_SIZE, kid: str | None = None) -> jwk.JWK:
    """A destination's private encryption key (RSA, ``RSA-OAEP-256``, ``key_ops ["unwrapKey"]``)."""
    return _generate(size, kid, ENCRYPTION_ALG, "enc", "unwrapKey")


def generate_signature_key(*, size: int = PRODUCTION_KEY_SIZE, kid: str | None = None) -> jwk.JWK:
    """A private signature key (RSA, ``PS512``, ``key_ops ["sign"]``), for events."""
    return _generate(size, kid, SIGNATURE_ALG, "sig", "sign")


_PUBLIC_OPS = {"unwrapKey": "wrapKey", "decrypt": "encrypt", "sign": "verify"}


def public_jwk(key: jwk.JWK) -> dict[str, Any]:
    """The public part of a key as FIT-Connect publishes it (private ``key_ops`` turned into public ones)."""
    exported: dict[str, Any] = key.export_public(as_dict=True)
    ops = exported.get("key_ops")
    if isinstance(ops, list):
        exported["key_ops"] = [_PUBLIC_OPS.get(op, op) for op in ops]
    return exported


def public_key(key: jwk.JWK) -> jwk.JWK:
    """The public key of a private one, with the public ``key_ops`` (``wrapKey``, ``verify``)."""
    return jwk.JWK(**public_jwk(key))


def key_id(key: jwk.JWK) -> str:
    """The key's ``kid`` (FIT-Connect keys always carry one)."""
    kid = key.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("a FIT-Connect key needs a kid")
    return kid


def _key_dicts(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    keys = document.get("keys")
    if keys is None:
        return [document]
    if not isinstance(keys, list) or not all(isinstance(k, Mapping) for k in keys):
        raise ValueError("a JWKS needs a list of keys under 'keys'")
    return keys


def load_keys(source: Path | str | Mapping[str, Any]) -> list[jwk.JWK]:
    """The keys of a JWK or JWKS, given as a file path or a parsed JSON object."""
    document: Any = source
    if not isinstance(source, Mapping):
        document = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(document, Mapping):
        raise ValueError("a JWK or JWKS is a JSON object")
    keys = [jwk.JWK(**dict(entry)) for entry in _key_dicts(document)]
    for key in keys:
        key_id(key)
    return keys


def load_key(source: Path | str | Mapping[str, Any]) -> jwk.JWK:
    """The one key of a JWK (or of a JWKS holding exactly one key)."""
    keys = load_keys(source)
    if len(keys) != 1:
        raise ValueError(f"expected one key, found {len(keys)}")
    return keys[0]


class Keyring:
    """Keys by ``kid``: a destination's private keys (several in a rollover), or the verifying public keys."""

    def __init__(self, keys: Iterable[jwk.JWK] = ()) -> None:
        self._keys: dict[str, jwk.JWK] = {}
        for key in keys:
            self.add(key)

    @classmethod
    def load(cls, *sources: Path | str | Mapping[str, Any]) -> Keyring:
        """A keyring of every key in the given JWK/JWKS files or objects."""
        return cls(key for source in sources for key in load_keys(source))

    def add(self, key: jwk.JWK) -> None:
        """Add a key (a second key with the same kid is refused: kids name keys uniquely)."""
        kid = key_id(key)
        if kid in self._keys and self._keys[kid].thumbprint() != key.thumbprint():
            raise ValueError(f"two different keys with kid {kid!r}")
        self._keys[kid] = key

    def get(self, kid: str) -> jwk.JWK | None:
        """The key with this kid, or whose RFC 7638 thumbprint it is (some senders name keys so), or None."""
        found = self._keys.get(kid)
        if found is None:
            found = next((key for key in self._keys.values() if key.thumbprint() == kid), None)
        return found

    @property
    def kids(self) -> list[str]:
        """The kids held, in insertion order."""
        return list(self._keys)

    def __iter__(self) -> Iterator[jwk.JWK]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)


# -- JWE --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decrypted:
    """A decrypted JWE: the plaintext and the protected header (``kid``, ``cty``, ...)."""

    plaintext: bytes
    header: dict[str, Any]


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _header(token: str, segments: int) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != segments:
        raise JoseError("malformed", f"expected {segments} segments, found {len(parts)}")
    try:
        header = json.loads(_b64decode(parts[0]))
    except ValueError as exc:
        raise JoseError("malformed", "the protected header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise JoseError("malformed", "the protected header is not a JSON object")
    return header


def encrypt(plaintext: bytes, key: jwk.JWK, content_type: str) -> str:
    """A compact JWE of ``plaintext`` for a destination's public encryption key (no compression)."""
    header = {"alg": ENCRYPTION_ALG, "enc": CONTENT_ENCRYPTION, "kid": key_id(key), "cty": content_type}
    token = jwe.JWE(plaintext, protected=json.dumps(header))
    token.add_recipient(key)
    return str(token.serialize(compact=True))


def jwe_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWE, unverified (to read ``kid`` and ``cty``)."""
    return _header(token, 5)


def authentication_tag(token: str) -> str:
    """The authentication tag of a compact JWE (its last segment), as events name it."""
    jwe_header(token)
    tag = token.rsplit(".", 1)[1]
    if not tag:
        raise JoseError("malformed", "the JWE has no authentication tag")
    return tag


def decrypt(token: str, keyring: Keyring) -> Decrypted:
    """Decrypt a compact JWE with the keyring's key named by its ``kid``; only RSA-OAEP-256 / A256GCM."""
    header = jwe_header(token)
    if header.get("alg") != ENCRYPTION_ALG or header.get("enc") != CONTENT_ENCRYPTION:
        raise JoseError("unsupported-algorithm", f"alg {header.get('alg')!r}, enc {header.get('enc')!r}")
    # Deflate is tolerated because deployed senders use it (the FIT-Connect Python SDK sets zip DEF);
    # jwcrypto bounds the inflated size.
    if header.get("zip", "DEF") != "DEF":
        raise JoseError("unsupported-algorithm", f"zip {header.get('zip')!r}")
    kid = header.get("kid")
    key = keyring.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise JoseError("unknown-kid", f"no key with kid {kid!r}")
    token_object = jwe.JWE()
    try:
        token_object.deserialize(token)
        token_object.allowed_algs = [ENCRYPTION_ALG, CONTENT_ENCRYPTION]
        token_object.decrypt(key)
    except (JWException, ValueError, TypeError) as exc:
        raise JoseError("decryption-failed", type(exc).__name__) from exc
    return Decrypted(plaintext=bytes(token_object.payload), header=header)


# -- events (SET) -----------------------------------------------------------------------------------

_REQUIRED_CLAIMS = ("jti", "iss", "iat", "sub", "txn", "events")


def sign_event(claims: Mapping[str, Any], key: jwk.JWK) -> str:
    """A compact JWS (``PS512``, ``typ secevent+jwt``, ``kid``) of an event's claims."""
    header = {"alg": SIGNATURE_ALG, "typ": SET_TYPE, "kid": key_id(key)}
    token = jws.JWS(json.dumps(dict(claims), separators=(",", ":")).encode("utf-8"))
    token.add_signature(key, alg=SIGNATURE_ALG, protected=json.dumps(header))
    return str(token.serialize(compact=True))


def event_header(token: str) -> dict[str, Any]:
    """The protected header of a SET, unverified (to find its ``kid``)."""
    return _header(token, 3)


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a SET without checking its signature (to find the issuer whose key verifies it)."""
    event_header(token)
    try:
        claims = json.loads(_b64decode(token.split(".")[1]))
    except ValueError as exc:
        raise JoseError("malformed", "the payload is not base64url JSON") from exc
    if not isinstance(claims, dict):
        raise JoseError("malformed", "the payload is not a JSON object")
    return claims


def verify_event(token: str, keys: Keyring) -> EventClaims:
    """Verify a SET (PS512 only, ``typ secevent+jwt``, a known ``kid``) and return its checked claims."""
    header = event_header(token)
    if header.get("alg") != SIGNATURE_ALG:
        raise JoseError("unsupported-algorithm", f"alg {header.get('alg')!r}")
    if header.get("typ") != SET_TYPE:
        raise JoseError("wrong-type", f"typ {header.get('typ')!r}")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise JoseError("unknown-kid", f"no key with kid {kid!r}")
    token_object = jws.JWS()
    try:
        token_object.deserialize(token)
        token_object.allowed_algs = [SIGNATURE_ALG]
        token_object.verify(key, alg=SIGNATURE_ALG)
    except (JWException, ValueError, TypeError) as exc:
        raise JoseError("bad-signature", type(exc).__name__) from exc
    claims = unverified_claims(token)
    missing = [name for name in _REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise JoseError("invalid-claims", f"missing {', '.join(missing)}")
    events = claims["events"]
    if not isinstance(events, dict) or len(events) != 1:
        raise JoseError("invalid-claims", "events must hold exactly one event")
    if not all(isinstance(payload, dict) for payload in events.values()):
        raise JoseError("invalid-claims", "an event's payload is a JSON object")
    try:
        return EventClaims.model_validate(claims)
    except ValidationError as exc:
        raise JoseError("invalid-claims", f"{exc.error_count()} claim(s) of the wrong type") from exc


def _claims(
    issuer: str, submission_id: str, case_id: str, event: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "$schema": SET_PAYLOAD_SCHEMA,
        "jti": str(uuid.uuid4()),
        "iss": issuer,
        "iat": int(time.time()),
        "sub": f"submission:{submission_id}",
        "txn": f"case:{case_id}",
        "events": {event: payload},
    }


def _tags(tags: AuthenticationTags) -> dict[str, Any]:
    dumped: dict[str, Any] = tags.model_dump(exclude_none=True)
    return dumped


def submit_event(issuer: str, submission_id: str, case_id: str, tags: AuthenticationTags) -> dict[str, Any]:
    """The claims of the Zustelldienst's ``submit-submission`` event, with the tags as submitted."""
    payload = {"$schema": SUBMIT_EVENT_SCHEMA, "authenticationTags": _tags(tags)}
    return _claims(issuer, submission_id, case_id, SUBMIT_SUBMISSION, payload)


def accept_event(
    destination_id: str, submission_id: str, case_id: str, tags: AuthenticationTags
) -> dict[str, Any]:
    """The claims of a receiver's ``accept-submission`` (issuer: the destination) with the tags it checked."""
    return _claims(
        destination_id, submission_id, case_id, ACCEPT_SUBMISSION, {"authenticationTags": _tags(tags)}
    )


def reject_event(
    destination_id: str, submission_id: str, case_id: str, problems: Sequence[Problem]
) -> dict[str, Any]:
    """The claims of a receiver's ``reject-submission`` with RFC 7807 ``problems`` (at least one)."""
    if not problems:
        raise ValueError("a reject names at least one problem")
    payload = {"problems": [p.model_dump(exclude_none=True) for p in problems]}
    return _claims(destination_id, submission_id, case_id, REJECT_SUBMISSION, payload)
