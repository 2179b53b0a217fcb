"""Helpers of the importfolder tests (a uniquely named module: plugin test folders are no packages)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub_fachverfahren.importfolder import ImportFolderSink
from hub_fachverfahren.importfolder.simulator import SimulatedFachverfahren

from hub import Answer, AnswerOutcome, ConnectorContext, UnknownApplication

XML_MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest>
  <reference>{{ folder }}</reference>
  <service>{{ record.service }}</service>
  <applicant>{{ application.form.vorname|default("") }} {{ application.form.nachname|default("")
  }}</applicant>
  <files>{% for f in files %}
    <file name="{{ f.name }}" type="{{ f.document_type }}" sha256="{{ f.sha256 }}"/>{% endfor %}
  </files>
</manifest>
"""

STATUS_MAP = {
    "eingegangen": "accepted",
    "in Bearbeitung": "in_progress",
    "beschieden": "decided",
    "abgelehnt": "failed",
}


@dataclass
class ReturnChannel:
    """The return channel's contract as the core keeps it: stored once per (connector, answer id).

    Stands in for the core until its return channel runs in these tests; `known` are the references
    (folder names) the hub recorded at delivery.
    """

    known: dict[str, str] = field(default_factory=dict)  # reference -> application id
    answers: dict[str, Answer] = field(default_factory=dict)
    outcomes: list[AnswerOutcome] = field(default_factory=list)
    calls: int = 0
    fail_next: Exception | None = None

    async def __call__(self, connector: str, answer: Answer) -> AnswerOutcome:
        self.calls += 1
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        application_id = answer.application_id or self.known.get(answer.reference or "")
        if application_id is None:
            raise UnknownApplication(f"no application with reference {answer.reference!r}")
        duplicate = answer.answer_id in self.answers
        self.answers.setdefault(answer.answer_id, answer)
        self.outcomes.append(AnswerOutcome(application_id=application_id, duplicate=duplicate))
        return self.outcomes[-1]


def answering_context(context: ConnectorContext, channel: ReturnChannel) -> ConnectorContext:
    """`context` with `channel` as its return channel."""
    return dataclasses.replace(context, _answer=channel)


def write_template(tmp_path: Path, name: str, text: str) -> Path:
    """A manifest template or stylesheet file in `tmp_path`."""
    path = tmp_path / "mappings" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_sink(context: ConnectorContext, tmp_path: Path, **settings: Any) -> ImportFolderSink:
    """An importfolder sink on tmp_path/import (answers in tmp_path/export), built as the hub builds it."""
    template = write_template(tmp_path, "fv-manifest.xml.j2", XML_MANIFEST)
    config: dict[str, Any] = {
        "type": "importfolder",
        "path": str(tmp_path / "import"),
        "answers": str(tmp_path / "export"),
        "manifest": {"template": str(template)},
        "answer_format": {"status_map": STATUS_MAP, "settle_seconds": 0},
    }
    config.update(settings)
    return ImportFolderSink(ImportFolderSink.Config.model_validate(config), context)  # type: ignore[arg-type]


def simulator(tmp_path: Path, **options: Any) -> SimulatedFachverfahren:
    """The simulated Fachverfahren on the folders of `make_sink`."""
    return SimulatedFachverfahren(tmp_path / "import", tmp_path / "export", tmp_path / "fv-work", **options)


def delivered_folders(directory: Path, application_id: str) -> list[Path]:
    """Published folders whose marker names the application."""
    if not directory.is_dir():
        return []
    found = []
    for folder in directory.iterdir():
        marker = folder / ".aktenhub.json"
        if (
            not folder.name.startswith(".")
            and marker.is_file()
            and json.loads(marker.read_bytes())["application"]["id"] == application_id
        ):
            found.append(folder)
    return found
