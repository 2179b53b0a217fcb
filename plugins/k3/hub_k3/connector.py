"""`type: k3`: the import folder transport preset with K3's manifest and K3's answer files.

Every key of `type: importfolder` applies; `manifest` and `answer_format` default to K3's (see README),
so an operator configures only the two folders and changes a format detail without code.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import ClassVar, Final, Literal

from hub_fachverfahren.importfolder import AnswerFormat, ImportFolderConfig, ImportFolderSink, ManifestSpec
from pydantic import Field

from hub import ConnectorConfig, Manifest

from .answers import k3_answer_format

VERSION: Final = "0.1.0"
TEMPLATE: Final = Path(str(files(__package__).joinpath("k3-import.xml.j2")))
MANIFEST_NAME: Final = "k3-import.xml"


class K3Config(ImportFolderConfig):
    """Settings of a K3 target: an import folder with K3's manifest and answer files as defaults."""

    transport: Literal["importfolder"] = Field(
        "importfolder", description="how K3 is reached; importfolder (sql and rest: not yet, see README)"
    )
    manifest: ManifestSpec = Field(
        default_factory=lambda: ManifestSpec(template=TEMPLATE, name=MANIFEST_NAME),
        description="K3's import manifest (default: the packaged k3-import.xml.j2)",
    )
    answer_format: AnswerFormat = Field(
        default_factory=k3_answer_format, description="K3's result files (default: K3Rueckmeldung XML)"
    )


class K3Sink(ImportFolderSink):
    """Delivers each application into K3's import folder; K3's result files come back as answers."""

    kind = "k3"
    Config: ClassVar[type[ConnectorConfig]] = K3Config
    manifest = Manifest(
        name="K3 (K3umwelt)",
        version=VERSION,
        standards=("K3 import folder: K3Import manifest (XML) v1, K3Rueckmeldung result files (XML) v1",),
        description="The Umweltamt's Fachverfahren K3: each application as a folder with K3's import "
        "manifest (case data, applicant, the enaio Akte, the files); K3's result files (case number, "
        "status, error, decision PDF) back through the return channel.",
    )
