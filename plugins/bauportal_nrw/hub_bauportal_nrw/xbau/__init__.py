"""XBau 2.6 / XBau-Kernmodul 1.3.0: schemas, hardened parsing, the building application and the answers.

- `schema`: the XSDs from the schema directory, compiled once per process; hardened, size-limited parsing.
- `build`: ``baugenehmigung.antrag.0200`` (tests, demo) and the process messages 1120, 1121, 1100, 1170.
- `read`: a schema-valid 0200 into typed data; the message head of any document.
"""

from __future__ import annotations

from .build import (
    build_aktenzeichen,
    build_antrag,
    build_eingangsbestaetigung,
    build_ruecknahme,
    build_rueckweisung,
    build_status_antragsportal,
    kernmodul_identity,
)
from .models import (
    AKTENZEICHEN,
    ANTRAG,
    EINGANGSBESTAETIGUNG,
    KERNMODUL_MESSAGES,
    MESSAGE_CODES,
    RUECKNAHME,
    RUECKWEISUNG,
    STATUS_ANTRAGSPORTAL,
    STATUS_BAUPORTAL_LIST,
    XBAU_MESSAGES,
    Address,
    Anlage,
    Bauantrag,
    Behoerde,
    Flurstueck,
    MessageIdentity,
    Person,
    check_dvdv,
    new_uuid,
)
from .read import AntragData, Head, read_antrag, read_head, read_referenz
from .schema import (
    BN_G2G,
    XBAU,
    XBAUK,
    UnsafeXml,
    XBauSchemaError,
    XBauSchemas,
    load_schemas,
    parse_bytes,
    parse_stream,
    xbau_directory,
)

__all__ = [
    "AKTENZEICHEN",
    "ANTRAG",
    "BN_G2G",
    "EINGANGSBESTAETIGUNG",
    "KERNMODUL_MESSAGES",
    "MESSAGE_CODES",
    "RUECKNAHME",
    "RUECKWEISUNG",
    "STATUS_ANTRAGSPORTAL",
    "STATUS_BAUPORTAL_LIST",
    "XBAU",
    "XBAUK",
    "XBAU_MESSAGES",
    "Address",
    "Anlage",
    "AntragData",
    "Bauantrag",
    "Behoerde",
    "Flurstueck",
    "Head",
    "MessageIdentity",
    "Person",
    "UnsafeXml",
    "XBauSchemaError",
    "XBauSchemas",
    "build_aktenzeichen",
    "build_antrag",
    "build_eingangsbestaetigung",
    "build_ruecknahme",
    "build_rueckweisung",
    "build_status_antragsportal",
    "check_dvdv",
    "kernmodul_identity",
    "load_schemas",
    "new_uuid",
    "parse_bytes",
    "parse_stream",
    "read_antrag",
    "read_head",
    "read_referenz",
    "xbau_directory",
]
