"""Faults the simulator works into a submission's content when it is submitted (``/_sim/faults``).

They are applied before the authentication tags are taken, so the submit event names the altered content
and a receiver finds the fault where the real one would show it: an unknown kid, a ciphertext that does
not decrypt, a metadata hash that does not match the data.
"""

from __future__ import annotations

import json
import uuid

from jwcrypto import jwk

from .. import jose
from ..tamper import corrupted, with_kid
from ..wire import sha512_hex
from .state import SimState, Submission


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
        submission.encrypted_metadata = with_kid(submission.encrypted_metadata, str(uuid.uuid4()))
        submission.faults.append("wrong_kid")
    if knobs.corrupt_ciphertext_next:
        target = submission.encrypted_data or submission.encrypted_metadata
        if target is not None:
            knobs.corrupt_ciphertext_next -= 1
            if submission.encrypted_data:
                submission.encrypted_data = corrupted(target)
            else:
                submission.encrypted_metadata = corrupted(target)
            submission.faults.append("corrupt_ciphertext")
    if knobs.metadata_hash_mismatch_next and _wrong_hash(state, submission):
        knobs.metadata_hash_mismatch_next -= 1
        submission.faults.append("metadata_hash_mismatch")
