"""Why an identity is refused: one code per kind of failure, and what the applicant reads for it.

A `Rejection` carries a code. The identity codes are named here once, so the pipeline, every identity
provider, `/metrics` (``aktenhub_identity_rejections_total{provider,reason}``) and every notifier
speak of the same thing. `citizen_text` gives the German sentence an applicant reads for a code: short
enough for a ZBP status text (50 characters), never naming our configuration.
"""

from __future__ import annotations

from enum import StrEnum


class RejectionCode(StrEnum):
    """Reason codes of identity rejections."""

    MISSING = "missing"  # no credential / no assertion / (form fields) no level
    MALFORMED = "malformed"  # not readable: encoding, XML, DOCTYPE, size, times, encrypted assertion
    BAD_SIGNATURE = "bad-signature"  # unsigned, other key, altered, signature wrapping
    WRONG_ISSUER = "wrong-issuer"
    WRONG_AUDIENCE = "wrong-audience"
    WRONG_DESTINATION = "wrong-destination"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    STATUS_NOT_SUCCESS = "status-not-success"  # the login itself failed or was cancelled
    REPLAYED = "replayed"  # the credential was used for another application
    ATTRIBUTE_MULTIVALUED = "attribute-multivalued"  # an identity attribute twice or with two values
    LEVEL_TOO_LOW = "level-too-low"  # achieved level below the route's min_level
    ATTRIBUTE_LEVEL_TOO_LOW = "attribute-level-too-low"  # an attribute's trust level below the route's


# What the applicant reads (German, at most 50 characters each: the ZBP's status text limit).
CITIZEN_TEXTS_MAX = 50
"""The longest a citizen text may be, in characters (the ZBP status text limit)."""
CITIZEN_TEXTS: dict[str, str] = {
    RejectionCode.MISSING: "Es liegt keine BundID-Anmeldung vor.",
    RejectionCode.MALFORMED: "Die BundID-Anmeldung ist nicht lesbar.",
    RejectionCode.BAD_SIGNATURE: "Die BundID-Anmeldung ist nicht gültig signiert.",
    RejectionCode.WRONG_ISSUER: "Die Anmeldung stammt nicht von der BundID.",
    RejectionCode.WRONG_AUDIENCE: "Die Anmeldung gilt nicht für diesen Dienst.",
    RejectionCode.WRONG_DESTINATION: "Die Anmeldung ist für einen anderen Empfänger.",
    RejectionCode.EXPIRED: "Die BundID-Anmeldung war abgelaufen.",
    RejectionCode.NOT_YET_VALID: "Die BundID-Anmeldung war noch nicht gültig.",
    RejectionCode.STATUS_NOT_SUCCESS: "Die BundID-Anmeldung ist nicht gelungen.",
    RejectionCode.REPLAYED: "Die BundID-Anmeldung wurde bereits verwendet.",
    RejectionCode.ATTRIBUTE_MULTIVALUED: "Die Anmeldedaten sind nicht eindeutig.",
    RejectionCode.LEVEL_TOO_LOW: "Das Vertrauensniveau der Anmeldung reicht nicht.",
    RejectionCode.ATTRIBUTE_LEVEL_TOO_LOW: "Eine Angabe ist nicht ausreichend bestätigt.",
}
GENERIC_TEXT = "Der Antrag konnte nicht angenommen werden."


def citizen_text(code: str | None, reason: str | None = None) -> str:
    """The German text for a rejection code; else the rejection's own reason, else a generic text."""
    if code is not None and code in CITIZEN_TEXTS:
        return CITIZEN_TEXTS[code]
    return reason or GENERIC_TEXT
