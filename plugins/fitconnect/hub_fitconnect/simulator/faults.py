"""Faults the simulator works into a submission's content when it is submitted (``/_sim/faults``).

They are applied before the authentication tags are taken, so the submit event names the altered content
and a receiver finds the fault where the real one would show it: an unknown kid, a ciphertext that does
not decrypt, a metadata hash that does not match the data.
"""

from __future__ import annotations

import base64
import json
import uuid

from jwcrypto import jwk

from .. import jose
from ..wire import sha512_hex
from .state import SimState, Submission


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _relabel(token: str) -> str:
    header = jose.jwe_header(token) | {"kid": str(uuid.uuid4())}
    return _b64(json.dumps(header).encode()) + "." + token.split(".", 1)[1]


def _corrupt(token: str) -> str:
    parts = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[3] + "=" * (-len(parts[3]) % 4)))
    raw[0] ^= 0xFF
    parts[3] = _b64(bytes(raw))
    return ".".join(parts)


def _wrong_hash(state: SimState, submission: Submission) -> bool:
    """Re-encrypt the metadata with a data hash that does not match (needs the destination's private key)."""
    private = state.destinations[submission.destination_id].private.get("encryptionKey")
    if private is None or submission.encrypted_metadata is None:
        return False
    ring = jose.Keyring([jwk.JWK(**private)])
    opened = jose.decrypt(submission.encrypted_metadata, ring)
    metadata = json.loads(opened.plaintext)
    structure = metadata.get("contentStructure", {})
    hashed = structure.get("data") or next(iter(structure.get("attachments", [])), None)
    if not isinstance(hashed, dict) or "hash" not in hashed:
        return False
    hashed["hash"]["content"] = sha512_hex(b"not the content")
    public = state.destinations[submission.destination_id].encryption_key
    cty = str(opened.header.get("cty", "application/json"))
    submission.encrypted_metadata = jose.encrypt(json.dumps(metadata).encode(), public, cty)
    return True


def tamper(state: SimState, submission: Submission) -> None:
    """Apply the one-shot content faults due to this submission; record which on it."""
    knobs = state.knobs
    if knobs.wrong_kid_next and submission.encrypted_metadata:
        knobs.wrong_kid_next -= 1
        submission.encrypted_metadata = _relabel(submission.encrypted_metadata)
        submission.faults.append("wrong_kid")
    if knobs.corrupt_ciphertext_next:
        target = submission.encrypted_data or submission.encrypted_metadata
        if target is not None:
            knobs.corrupt_ciphertext_next -= 1
            if submission.encrypted_data:
                submission.encrypted_data = _corrupt(target)
            else:
                submission.encrypted_metadata = _corrupt(target)
            submission.faults.append("corrupt_ciphertext")
    if knobs.metadata_hash_mismatch_next and _wrong_hash(state, submission):
        knobs.metadata_hash_mismatch_next -= 1
        submission.faults.append("metadata_hash_mismatch")
