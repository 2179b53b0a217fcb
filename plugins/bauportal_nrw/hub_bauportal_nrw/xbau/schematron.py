"""The official XBau Schematron rules: an optional second validation stage after the XSD.

The rules are not part of this package: they are read from the schema directory,
``<schemas>/xbau/2.6/schematron/*.sch`` (the XLeitstelle's release: the business rules, e.g. DVDV
Behördenkennungen ``^[a-z]{3}:\\d+$``, and the rule against empty elements).

They are ISO Schematron with ``queryBinding="xslt2"``: their tests use XPath 2 (``matches()``,
``if … then … else``). So each schema is compiled once per process into a validating XSLT by the ISO
Schematron skeleton that lxml ships (include, abstract-rule expansion, SVRL output; these XSLT 1
preprocessing steps run in libxslt), and the result runs as XSLT 2.0 in Saxon-HE (``saxonche``): the
skeleton's output is plain XSLT that Saxon runs as 2.0 once its version says so, and XPath 2 is what
the tests need. The skeleton refuses any binding but ``xslt`` by name, hence the binding is renamed
before compilation; nothing else in the rules is touched.

Saxon runs on one thread of its own (`_SAXON`): the processor is created there and every transformation
happens there, so no two threads use the native library at once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree, isoschematron

from hub.xml import hardened_parser

from .schema import XBauSchemaError

SCHEMATRON_DIRECTORY = Path("xbau") / "2.6" / "schematron"
SCH = "http://purl.oclc.org/dsdl/schematron"
SVRL = "http://purl.oclc.org/dsdl/svrl"
MAX_FINDINGS = 20
# Location paths of the skeleton name a qualified step *[local-name()='…' and namespace-uri()='…'];
# the namespace says nothing a reader of the finding needs.
_NAMESPACE_TEST = re.compile(r"\*\[local-name\(\)='([^']*)' and namespace-uri\(\)='[^']*'\]")

_SAXON = ThreadPoolExecutor(max_workers=1, thread_name_prefix="saxon")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Finding:
    """A failed assert (or a successful report) of the Schematron: rule id, its text, where."""

    id: str
    text: str
    location: str

    def __str__(self) -> str:
        return f"{self.id}: {self.text} ({self.location})" if self.id else f"{self.text} ({self.location})"


def schematron_directory(schemas: Path) -> Path:
    """The XBau 2.6 Schematron directory inside a schema directory (with at least one .sch file)."""
    directory = (schemas / SCHEMATRON_DIRECTORY).resolve()
    if not directory.is_dir() or not any(directory.glob("*.sch")):
        raise XBauSchemaError(
            f"XBau 2.6 Schematron rules not found in {directory} (expected *.sch; set `schemas:` or "
            "$AKTENHUB_SCHEMAS to a directory laid out like shared/reference, or turn `schematron` off)"
        )
    return directory


def _on_saxon_thread(call: Callable[[], _T]) -> _T:
    return _SAXON.submit(call).result()


@functools.cache
def _processor() -> Any:
    # Called on the Saxon thread only.
    try:
        from saxonche import PySaxonProcessor
    except ImportError as exc:  # pragma: no cover - a dependency of this plugin
        raise XBauSchemaError(f"the Schematron stage needs Saxon-HE (package saxonche): {exc}") from None
    return PySaxonProcessor(license=False)


def compile_schematron(path: Path) -> str:
    """The validating XSLT 2.0 (SVRL output) of one Schematron file, as text."""
    try:
        document = etree.parse(str(path), hardened_parser())
    except (OSError, etree.XMLSyntaxError) as exc:
        raise XBauSchemaError(f"cannot read the Schematron {path.name}: {exc}") from exc
    root = document.getroot()
    if root.tag != f"{{{SCH}}}schema":
        raise XBauSchemaError(f"{path.name} is not an ISO Schematron schema")
    if root.get("queryBinding", "xslt") not in ("xslt", "xslt2", "xslt3"):
        raise XBauSchemaError(f"{path.name}: query binding {root.get('queryBinding')!r} is not supported")
    root.set("queryBinding", "xslt")
    try:
        included = isoschematron.iso_dsdl_include(document)
        expanded = isoschematron.iso_abstract_expand(included)
        validator = isoschematron.iso_svrl_for_xslt1(expanded)
    except etree.XSLTApplyError as exc:
        raise XBauSchemaError(f"cannot compile the Schematron {path.name}: {exc}") from exc
    stylesheet = validator.getroot()
    if stylesheet is None:
        raise XBauSchemaError(f"cannot compile the Schematron {path.name}: no stylesheet produced")
    stylesheet.set("version", "2.0")
    return str(etree.tostring(stylesheet, encoding="unicode"))


class XBauSchematron:
    """The compiled XBau Schematron rules of one schema directory, run by Saxon-HE."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = sorted(directory.glob("*.sch"))
        stylesheets = [(p.name, compile_schematron(p)) for p in self.files]
        self._executables: list[tuple[str, Any]] = _on_saxon_thread(lambda: self._compile(stylesheets))

    @staticmethod
    def _compile(stylesheets: list[tuple[str, str]]) -> list[tuple[str, Any]]:
        xslt = _processor().new_xslt30_processor()
        compiled: list[tuple[str, Any]] = []
        for name, text in stylesheets:
            try:
                compiled.append((name, xslt.compile_stylesheet(stylesheet_text=text)))
            except Exception as exc:  # saxonche raises PySaxonApiError, a plain Exception
                raise XBauSchemaError(f"Saxon cannot compile the Schematron {name}: {exc}") from exc
        return compiled

    def findings(self, root: etree._Element) -> list[Finding]:
        """Every failed assert and successful report of all rule files on the message."""
        text = etree.tostring(root, encoding="unicode")
        reports = _on_saxon_thread(lambda: self._run(text))
        found: list[Finding] = []
        for name, report in reports:
            if isinstance(report, Finding):
                found.append(report)
            else:
                found.extend(_svrl_findings(name, report))
        return found

    def errors(self, root: etree._Element) -> list[str]:
        """The findings as text (empty: the message keeps the rules), at most `MAX_FINDINGS`."""
        found = [str(f) for f in self.findings(root)]
        if len(found) > MAX_FINDINGS:
            found = [*found[:MAX_FINDINGS], f"... and {len(found) - MAX_FINDINGS} more"]
        return found

    def _run(self, text: str) -> list[tuple[str, str | Finding]]:
        node = _processor().parse_xml(xml_text=text)
        reports: list[tuple[str, str | Finding]] = []
        for name, executable in self._executables:
            try:
                reports.append((name, executable.transform_to_string(xdm_node=node)))
            except Exception as exc:  # PySaxonApiError: a dynamic error, e.g. a number that is none
                # The rules compiled, so it is this message's content they cannot be applied to.
                reason = " ".join(str(exc).split())[:300]
                found = Finding(
                    id="", text=f"Die Regeln aus {name} sind nicht anwendbar: {reason}", location="/"
                )
                reports.append((name, found))
        return reports


def _svrl_findings(name: str, report: str) -> list[Finding]:
    try:
        svrl = etree.fromstring(report.encode("utf-8"), hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise XBauSchemaError(f"the Schematron {name} produced no readable report: {exc}") from exc
    found: list[Finding] = []
    for element in svrl.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        message = " ".join("".join(element.itertext()).split())
        location = _NAMESPACE_TEST.sub(r"\1", element.get("location") or "")
        found.append(Finding(id=element.get("id") or "", text=message, location=location))
    return found


@functools.lru_cache(maxsize=4)
def load_schematron(schemas: Path) -> XBauSchematron:
    """The compiled XBau Schematron of a schema directory, once per directory and process."""
    return XBauSchematron(schematron_directory(schemas))
