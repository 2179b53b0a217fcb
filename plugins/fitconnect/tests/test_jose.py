"""The JOSE layer: JWE and SET round trips, and every refusal a receiver or the Zustelldienst relies on."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hub_fitconnect import jose
from hub_fitconnect.wire import ACCEPT_SUBMISSION, REJECT_SUBMISSION, AuthenticationTags, Problem
from jwcrypto import jwe, jwk, jws


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _with_header(token: str, **changes: object) -> str:
    """The token with its protected header changed (the signature or tag then no longer fits)."""
    head, rest = token.split(".", 1)
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header.update(changes)
    return _b64(json.dumps(header).encode()) + "." + rest


def test_keys_carry_fitconnect_key_ops(encryption_key: jwk.JWK, signature_key: jwk.JWK) -> None:
    enc = jose.public_jwk(encryption_key)
    sig = jose.public_jwk(signature_key)
    assert (enc["alg"], enc["key_ops"], enc["use"]) == ("RSA-OAEP-256", ["wrapKey"], "enc")
    assert (sig["alg"], sig["key_ops"]) == ("PS512", ["verify"])
    assert "d" not in enc and "d" not in sig
    assert encryption_key.export(as_dict=True)["key_ops"] == ["unwrapKey"]


def test_jwe_round_trip(encryption_key: jwk.JWK) -> None:
    token = jose.encrypt(b'{"antrag": 1}', jose.public_key(encryption_key), "application/json")
    header = jose.jwe_header(token)
    assert header == {
        "alg": "RSA-OAEP-256",
        "enc": "A256GCM",
        "kid": jose.key_id(encryption_key),
        "cty": "application/json",
    }
    found = jose.decrypt(token, jose.Keyring([encryption_key]))
    assert found.plaintext == b'{"antrag": 1}'
    assert found.header["cty"] == "application/json"
    assert jose.authentication_tag(token) == token.split(".")[4]


def test_rollover_keyring_finds_the_named_key(
    encryption_key: jwk.JWK, other_encryption_key: jwk.JWK, tmp_path: Path
) -> None:
    jwks = tmp_path / "keys.json"
    jwks.write_text(
        json.dumps({"keys": [k.export(as_dict=True) for k in (encryption_key, other_encryption_key)]})
    )
    ring = jose.Keyring.load(jwks)
    assert ring.kids == [jose.key_id(encryption_key), jose.key_id(other_encryption_key)]
    token = jose.encrypt(b"zwei", jose.public_key(other_encryption_key), "application/xml")
    assert jose.decrypt(token, ring).plaintext == b"zwei"


def test_decrypt_refuses_unknown_kid(encryption_key: jwk.JWK, other_encryption_key: jwk.JWK) -> None:
    token = jose.encrypt(b"x", jose.public_key(other_encryption_key), "application/json")
    with pytest.raises(jose.JoseError) as refused:
        jose.decrypt(token, jose.Keyring([encryption_key]))
    assert refused.value.reason == "unknown-kid"


def test_decrypt_refuses_a_kid_naming_the_wrong_key(
    encryption_key: jwk.JWK, other_encryption_key: jwk.JWK
) -> None:
    token = jose.encrypt(b"x", jose.public_key(other_encryption_key), "application/json")
    relabelled = _with_header(token, kid=jose.key_id(encryption_key))
    with pytest.raises(jose.JoseError) as refused:
        jose.decrypt(relabelled, jose.Keyring([encryption_key]))
    assert refused.value.reason == "decryption-failed"


@pytest.mark.parametrize(
    "change", [{"alg": "RSA1_5"}, {"alg": "dir"}, {"enc": "A128CBC-HS256"}, {"enc": "A128GCM"}, {"zip": "XZ"}]
)
def test_decrypt_refuses_other_algorithms(encryption_key: jwk.JWK, change: dict[str, str]) -> None:
    token = jose.encrypt(b"x", jose.public_key(encryption_key), "application/json")
    with pytest.raises(jose.JoseError) as refused:
        jose.decrypt(_with_header(token, **change), jose.Keyring([encryption_key]))
    assert refused.value.reason == "unsupported-algorithm"


def test_decrypt_refuses_a_genuine_jwe_with_another_content_encryption(encryption_key: jwk.JWK) -> None:
    other = jwe.JWE(
        b"x",
        protected=json.dumps(
            {"alg": "RSA-OAEP-256", "enc": "A256CBC-HS512", "kid": jose.key_id(encryption_key)}
        ),
    )
    other.add_recipient(jose.public_key(encryption_key))
    with pytest.raises(jose.JoseError) as refused:
        jose.decrypt(other.serialize(compact=True), jose.Keyring([encryption_key]))
    assert refused.value.reason == "unsupported-algorithm"


@pytest.mark.parametrize("segment", [2, 3, 4], ids=["iv", "ciphertext", "tag"])
def test_decrypt_refuses_altered_parts(encryption_key: jwk.JWK, segment: int) -> None:
    token = jose.encrypt(b"a longer plaintext to alter", jose.public_key(encryption_key), "application/json")
    parts = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[segment] + "=" * (-len(parts[segment]) % 4)))
    raw[0] ^= 0x01
    parts[segment] = _b64(bytes(raw))
    with pytest.raises(jose.JoseError) as refused:
        jose.decrypt(".".join(parts), jose.Keyring([encryption_key]))
    assert refused.value.reason == "decryption-failed"


@pytest.mark.parametrize("token", ["", "not-a-jwe", "a.b.c", "!!!.b.c.d.e", "W10.b.c.d.e"])
def test_decrypt_refuses_malformed_tokens(encryption_key: jwk.JWK, token: str) -> None:
    with pytest.raises(jose.JoseError) as refused:
        jose.decrypt(token, jose.Keyring([encryption_key]))
    assert refused.value.reason == "malformed"


def _accept(signature_key: jwk.JWK) -> str:
    tags = AuthenticationTags(metadata="m", data="d", attachments={"a1": "t1"})
    return jose.sign_event(jose.accept_event("dest-1", "sub-1", "case-1", tags), signature_key)


def test_event_round_trip(signature_key: jwk.JWK) -> None:
    token = _accept(signature_key)
    assert jose.event_header(token) == {
        "alg": "PS512",
        "typ": "secevent+jwt",
        "kid": jose.key_id(signature_key),
    }
    claims = jose.verify_event(token, jose.Keyring([jose.public_key(signature_key)]))
    assert claims.event == ACCEPT_SUBMISSION
    assert (claims.iss, claims.submission_id, claims.case_id) == ("dest-1", "sub-1", "case-1")
    assert claims.authentication_tags == AuthenticationTags(metadata="m", data="d", attachments={"a1": "t1"})


def test_reject_event_carries_problems(signature_key: jwk.JWK) -> None:
    problem = Problem(
        type="https://schema.fitko.de/fit-connect/events/problems/encryption-issue",
        title="x",
        detail="y",
        instance="metadata",
    )
    token = jose.sign_event(jose.reject_event("dest-1", "sub-1", "case-1", [problem]), signature_key)
    claims = jose.verify_event(token, jose.Keyring([jose.public_key(signature_key)]))
    assert claims.event == REJECT_SUBMISSION
    assert claims.problems == [problem]
    with pytest.raises(ValueError):
        jose.reject_event("dest-1", "sub-1", "case-1", [])


def test_verify_refuses_wrong_signature_key(signature_key: jwk.JWK, other_signature_key: jwk.JWK) -> None:
    token = _accept(other_signature_key)
    relabelled = jose.Keyring(
        [jwk.JWK(**{**jose.public_jwk(signature_key), "kid": jose.key_id(other_signature_key)})]
    )
    with pytest.raises(jose.JoseError) as refused:
        jose.verify_event(token, relabelled)
    assert refused.value.reason == "bad-signature"
    with pytest.raises(jose.JoseError) as unknown:
        jose.verify_event(token, jose.Keyring([jose.public_key(signature_key)]))
    assert unknown.value.reason == "unknown-kid"


def test_verify_refuses_altered_claims(signature_key: jwk.JWK) -> None:
    head, payload, signature = _accept(signature_key).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "submission:other"
    token = ".".join([head, _b64(json.dumps(claims).encode()), signature])
    with pytest.raises(jose.JoseError) as refused:
        jose.verify_event(token, jose.Keyring([jose.public_key(signature_key)]))
    assert refused.value.reason == "bad-signature"


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "RS512", "PS256"])
def test_verify_refuses_other_algorithms(signature_key: jwk.JWK, alg: str) -> None:
    with pytest.raises(jose.JoseError) as refused:
        jose.verify_event(
            _with_header(_accept(signature_key), alg=alg), jose.Keyring([jose.public_key(signature_key)])
        )
    assert refused.value.reason == "unsupported-algorithm"


def test_verify_refuses_an_hmac_signed_with_the_public_key(signature_key: jwk.JWK) -> None:
    """The classic confusion attack: HS512 keyed with the public key's bytes."""
    public = jose.public_key(signature_key)
    secret = jwk.JWK(kty="oct", k=_b64(public.export_to_pem()), kid=jose.key_id(signature_key))
    token = jws.JWS(json.dumps(jose.accept_event("d", "s", "c", AuthenticationTags(metadata="m"))).encode())
    token.add_signature(
        secret,
        alg="HS512",
        protected=json.dumps({"alg": "HS512", "typ": "secevent+jwt", "kid": jose.key_id(signature_key)}),
    )
    with pytest.raises(jose.JoseError) as refused:
        jose.verify_event(token.serialize(compact=True), jose.Keyring([public]))
    assert refused.value.reason == "unsupported-algorithm"


def test_verify_refuses_wrong_typ(signature_key: jwk.JWK) -> None:
    claims = jose.accept_event("d", "s", "c", AuthenticationTags(metadata="m"))
    token = jws.JWS(json.dumps(claims).encode())
    token.add_signature(
        signature_key,
        alg="PS512",
        protected=json.dumps({"alg": "PS512", "typ": "JWT", "kid": jose.key_id(signature_key)}),
    )
    with pytest.raises(jose.JoseError) as refused:
        jose.verify_event(token.serialize(compact=True), jose.Keyring([jose.public_key(signature_key)]))
    assert refused.value.reason == "wrong-type"


@pytest.mark.parametrize("claim", ["jti", "iss", "iat", "sub", "txn", "events"])
def test_verify_refuses_missing_claims(signature_key: jwk.JWK, claim: str) -> None:
    claims = jose.accept_event("d", "s", "c", AuthenticationTags(metadata="m"))
    del claims[claim]
    token = jose.sign_event(claims, signature_key)
    with pytest.raises(jose.JoseError) as refused:
        jose.verify_event(token, jose.Keyring([jose.public_key(signature_key)]))
    assert refused.value.reason == "invalid-claims"


@pytest.mark.parametrize("events", [{}, {ACCEPT_SUBMISSION: {}, REJECT_SUBMISSION: {}}, [ACCEPT_SUBMISSION]])
def test_verify_refuses_other_than_one_event(signature_key: jwk.JWK, events: object) -> None:
    claims = {**jose.accept_event("d", "s", "c", AuthenticationTags(metadata="m")), "events": events}
    with pytest.raises(jose.JoseError) as refused:
        jose.verify_event(
            jose.sign_event(claims, signature_key), jose.Keyring([jose.public_key(signature_key)])
        )
    assert refused.value.reason == "invalid-claims"
