"""A Fachverfahren behind an import folder: it takes folders in, refuses malformed ones, answers.

Like a real one it only looks at folders whose names do not start with a dot, takes a folder by moving
it away first, reads the manifest (its name, format and where the reference is in it are options, so a
profile such as K3 configures its own), checks that every file the manifest names is there, assigns a
case number and writes a result file into the answer folder; a malformed import gets a result with an
error instead. Later a clerk "decides": a result with the decision status and the decision as a PDF
next to it. Result files are written atomically (temporary dot file, then rename).

Control endpoints drive it deterministically: ``POST /control/import`` (take every waiting folder),
``POST /control/decide`` (JSON ``{"reference", "status", "message", "pdf"}``), ``GET /control/cases``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonpath_ng.parser import parse as jsonpath
from lxml import etree

from hub import Simulator
from hub.simulation import MalformedRequest
from hub.xml import UnsafeXml, parse_xml

from ..casework import decision_pdf, read_decision

MAX_MANIFEST = 16 * 1024 * 1024


@dataclass
class Case:
    """A case the simulated Fachverfahren opened for an import."""

    reference: str
    case_number: str
    folder: str
    status: str = "eingegangen"
    files: list[str] = field(default_factory=list)


@dataclass
class SimulatedFachverfahren:
    """The state of the simulated Fachverfahren (options as `make_app` takes them)."""

    import_dir: Path
    answer_dir: Path
    work_dir: Path
    manifest: str = "manifest.xml"
    reference: str = "/manifest/reference"  # XPath (XML manifest), JSONPath (JSON) or column (CSV)
    files: str | None = "//file/@name"  # where the manifest names its files (None: not checked)
    answer_format: str = "xml"
    # A profile's own result format: root element (XML) and names of the fields (element, key, column).
    answer_root: str = "result"
    answer_names: dict[str, str] = field(default_factory=dict)
    prefix: str = "FV"
    cases: dict[str, Case] = field(default_factory=dict)
    refused: list[dict[str, str]] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _results: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def take_imports(self) -> dict[str, list[str]]:
        """Take every waiting folder: open a case, or refuse it with an error result."""
        imported: list[str] = []
        refused: list[str] = []
        self.import_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.import_dir.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            taken = self.work_dir / entry.name
            if taken.exists():
                shutil.rmtree(taken)
            os.rename(entry, taken)  # moved away first: a half-imported folder never looks new again
            try:
                reference, files = self._read(taken)
            except ValueError as exc:
                self.refused.append({"folder": entry.name, "error": str(exc)})
                self._result({"reference": entry.name, "status": "abgelehnt", "error": str(exc)})
                refused.append(entry.name)
                continue
            if reference in self.cases:  # the same import again: the case exists, nothing new
                continue
            case = Case(reference, f"{self.prefix}-{next(self._numbers):05d}", entry.name, files=files)
            self.cases[reference] = case
            self._result({"reference": reference, "case_number": case.case_number, "status": case.status})
            imported.append(reference)
        return {"imported": imported, "refused": refused}

    def decide(self, reference: str, status: str, message: str | None, pdf: bool) -> Case:
        """A clerk's decision (or another status change) on a case, reported as a result file."""
        case = self.cases[reference]
        case.status = status
        result: dict[str, str] = {"reference": reference, "case_number": case.case_number, "status": status}
        if message:
            result["message"] = message
        if pdf:
            name = f"Bescheid-{case.case_number}.pdf"
            self._write(self.answer_dir / name, decision_pdf(f"Bescheid {case.case_number}"))
            result["decision"] = name
        self._result(result)
        return case

    def _read(self, folder: Path) -> tuple[str, list[str]]:
        path = folder / self.manifest
        if not path.is_file():
            raise ValueError(f"manifest {self.manifest} missing")
        data = path.read_bytes()
        kind = self.manifest.rpartition(".")[2].lower()
        reference = _values(kind, data, self.reference)
        if not reference or not reference[0].strip():
            raise ValueError("manifest names no reference")
        files = _values(kind, data, self.files) if self.files else []
        missing = [name for name in files if not (folder / name).is_file() or "/" in name]
        if missing:
            raise ValueError(f"{len(missing)} file(s) named in the manifest missing")
        return reference[0].strip(), files

    def _result(self, values: dict[str, str]) -> None:
        number = next(self._results)
        name = f"{values['reference'][:80]}-{number:04d}.{self.answer_format}"
        values = {self.answer_names.get(key, key): value for key, value in values.items()}
        if self.answer_format == "json":
            content = json.dumps(values, ensure_ascii=False).encode()
        elif self.answer_format == "csv":
            out = io.StringIO()
            fields = ["reference", "case_number", "status", "message", "error", "decision"]
            columns = [self.answer_names.get(key, key) for key in fields]
            writer = csv.DictWriter(out, columns, delimiter=";")
            writer.writeheader()
            writer.writerow(values)
            content = out.getvalue().encode()
        else:
            root = etree.Element(self.answer_root)
            for key, value in values.items():
                etree.SubElement(root, key).text = value
            content = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        self._write(self.answer_dir / name, content)

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.part")
        temp.write_bytes(content)
        os.rename(temp, path)


STATE = web.AppKey("importfolder", SimulatedFachverfahren)


def _values(kind: str, data: bytes, path: str) -> list[str]:
    try:
        if kind == "xml":
            found = etree.XPath(path)(parse_xml(data, limit=MAX_MANIFEST))
            items = found if isinstance(found, list) else [found]
            return ["".join(i.itertext()) if isinstance(i, etree._Element) else str(i) for i in items]
        text = data.decode("utf-8")
        if kind == "json":
            return [str(m.value) for m in jsonpath(path).find(json.loads(text))]
        rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
        return [row[path] for row in rows if row.get(path)]
    except (UnsafeXml, ValueError, etree.XPathError) as exc:
        raise ValueError(f"manifest not readable: {exc}") from None


async def _import(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].take_imports())


async def _decide(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        decision = await read_decision(request)
    except MalformedRequest as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    if decision.reference not in state.cases:
        return web.json_response({"error": "no such case"}, status=404)
    case = state.decide(decision.reference, decision.status, decision.message, decision.pdf)
    return web.json_response(asdict(case))


async def _cases(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"cases": [asdict(c) for c in state.cases.values()], "refused": state.refused})


def make_app(
    import_dir: str | Path = "import",
    answer_dir: str | Path = "export",
    data_dir: str | Path | None = None,
    **options: Any,
) -> web.Application:
    """The simulated Fachverfahren on `import_dir` / `answer_dir` (options: see `SimulatedFachverfahren`)."""
    import_path = Path(import_dir)
    work = Path(data_dir) if data_dir is not None else import_path.parent / ".fachverfahren-work"
    app = web.Application()
    app[STATE] = SimulatedFachverfahren(import_path, Path(answer_dir), work, **options)
    app.router.add_post("/control/import", _import)
    app.router.add_post("/control/decide", _decide)
    app.router.add_get("/control/cases", _cases)
    return app


SIMULATOR = Simulator(
    name="importfolder",
    description="a Fachverfahren reading an import folder and writing result files (case number, "
    "status, error, decision PDF)",
    make_app=make_app,
)
