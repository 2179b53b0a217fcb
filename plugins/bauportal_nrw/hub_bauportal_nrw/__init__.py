"""Bauportal.NRW for Aktenhub: XBau 2.6 building applications from an XTA 2 mailbox, answers back.

- `BauportalNrwSource` (``type: bauportal-nrw``): polls the Bauaufsicht's XTA mailbox, validates each
  ``baugenehmigung.antrag.0200`` against the XBau XSD and takes it in (Anlagen streamed to the blob store).
- `BauportalNrwAnswers` (``type: bauportal-nrw-answers``): sends ``eingangsbestaetigung.1120`` and
  ``aktenzeichen.1121`` after filing, ``rueckweisung.G2G.1100`` for a refused message.
- `xbau`: schemas, hardened parsing, builders and the reader of the messages.
"""

from __future__ import annotations

from .answers import BauportalNrwAnswers
from .config import BauportalNrwAnswersConfig, BauportalNrwConfig
from .reply import ReplyTo
from .source import MANIFEST, STANDARDS, BauportalNrwSource
from .store import AnswerStore, PreparedAnswer

__all__ = [
    "MANIFEST",
    "STANDARDS",
    "AnswerStore",
    "BauportalNrwAnswers",
    "BauportalNrwAnswersConfig",
    "BauportalNrwConfig",
    "BauportalNrwSource",
    "PreparedAnswer",
    "ReplyTo",
]
