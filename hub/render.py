"""The PDF rendition of an application: what the clerk reads when they open the case in the e-file.

One A4 document in German: a header (title, Leistung, Aktenzeichen, time of receipt, ids), the applicant,
the identity proof, every form field with its label in submission order, and the attachments with size
and SHA-256. Each page carries "Seite x von y" and the application id.

Text is set in DejaVu Sans, embedded as a subset. It covers every character of DIN 91379 (names with
Latin letters and combining marks, Greek, Cyrillic); the TTF files ship with the hub (`hub/fonts`). A
character DejaVu lacks (emoji, CJK) is drawn as the font's empty box. The fonts are measured once per
process and each document embeds only the glyphs it shows (`hub.typeset`): a two-page rendition costs a
few milliseconds of CPU.

The output is a pure function of the input: creation date = time of receipt, document id = hash of the
content, fixed font subset tags. Rendering the same application twice gives the same bytes.

Layout is done in two passes: the first wraps all text and breaks pages, the second draws, so the page
total is known and no placeholder ever ends up in the text of a form field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub.models import Address, Application, Attachment, Identity, Party
from hub.typeset import PT, Document, Font, load_font

BERLIN = ZoneInfo("Europe/Berlin")

# -- page geometry (mm) --------------------------------------------------------------------------------

PAGE_W, PAGE_H = 210.0, 297.0
LEFT = 20.0
RIGHT = PAGE_W - 20.0
TOP_FIRST = 16.0  # page 1 starts with the title block
TOP_NEXT = 22.0  # later pages start below the running header
BOTTOM = PAGE_H - 22.0  # content ends here; the footer sits below
LABEL_W = 52.0
VALUE_X = LEFT + LABEL_W + 5.0
VALUE_W = RIGHT - VALUE_X
INDENT = 5.0  # per nesting level of a form value
BULLET_W = 4.0
ROW_GAP = 1.8

_WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
_ASSERTED_BY = {
    "idp": "Identitätsanbieter, signierte Bestätigung geprüft",
    "form-server": "übermittelt vom Formularserver",
}
_PROVIDERS = {"bundid": "BundID", "elster": "ELSTER", "eidas": "eIDAS"}
# German function words stay lower case when a field name is made readable ("anzahl_der_personen").
_SMALL_WORDS = frozenset(
    {
        "der",
        "die",
        "das",
        "des",
        "dem",
        "den",
        "ein",
        "eine",
        "einer",
        "eines",
        "einem",
        "einen",
        "und",
        "oder",
        "sowie",
        "von",
        "vom",
        "zu",
        "zum",
        "zur",
        "im",
        "in",
        "am",
        "an",
        "auf",
        "aus",
        "bei",
        "mit",
        "nach",
        "für",
        "über",
        "unter",
        "ohne",
        "pro",
        "je",
        "als",
        "bis",
        "seit",
    }
)


# -- fonts ---------------------------------------------------------------------------------------------

_SANS = "DejaVuSans.ttf"
_SANS_BOLD = "DejaVuSans-Bold.ttf"
_MONO = "DejaVuSansMono.ttf"


@dataclass(frozen=True)
class _Style:
    family: str = _SANS
    bold: bool = False
    size: float = 9.5  # pt
    color: tuple[int, int, int] = (25, 25, 25)

    @property
    def line_height(self) -> float:
        return self.size * PT * 1.42

    @property
    def font(self) -> Font:
        return load_font(_SANS_BOLD if self.bold and self.family == _SANS else self.family)

    def width(self, text: str) -> float:
        """Width of the text in this style, in mm."""
        return self.font.width(text, self.size)


_ACCENT = (28, 62, 104)
_KICKER = _Style(size=8.0, color=(95, 95, 95))
_TITLE = _Style(bold=True, size=16.0, color=(15, 15, 15))
_SECTION = _Style(bold=True, size=11.0, color=_ACCENT)
_LABEL = _Style(size=9.0, color=(80, 80, 80))
_VALUE = _Style()
_STRONG = _Style(bold=True)
_MUTED = _Style(size=9.0, color=(115, 115, 115))
_CODE = _Style(family=_MONO, size=8.0)
_SMALL = _Style(size=7.5, color=(105, 105, 105))


# -- text ----------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _clean(text: str, *, single_line: bool = False) -> str:
    """Text as it is set: NFC (precomposed glyphs look best), no control characters."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _CONTROL.sub("", text)
    if single_line:
        text = " ".join(text.split())
    return text


def readable(name: str) -> str:
    """A field or service name as a heading: "anzahl_der_personen" → "Anzahl der Personen"."""
    spaced = re.sub(r"(?<=[a-zäöüß])(?=[A-ZÄÖÜ])", " ", name)
    words = [w for w in re.split(r"[\s_.\-/]+", spaced) if w]
    if not words:
        return name
    out = [words[0][:1].upper() + words[0][1:]]
    for word in words[1:]:
        out.append(word if word.lower() in _SMALL_WORDS else word[:1].upper() + word[1:])
    return " ".join(out)


_AFTER_HYPHEN = re.compile(r"(?<=-)(?=.)")


def _clusters(text: str) -> list[str]:
    """Characters with their combining marks: a line never starts with a lone accent."""
    out: list[str] = []
    for char in text:
        if out and (unicodedata.combining(char) or char == "\u200d"):
            out[-1] += char
        else:
            out.append(char)
    return out


def _de_int(number: int) -> str:
    return f"{number:,}".replace(",", ".")


def human_size(size: int) -> str:
    """A file size the German way: "1,2 MB (1.234.567 Bytes)"."""
    exact = "1 Byte" if size == 1 else f"{_de_int(size)} Bytes"
    if size < 1000:
        return exact
    for unit, factor in (("kB", 10**3), ("MB", 10**6), ("GB", 10**9), ("TB", 10**12)):
        shown = f"{size / factor:.1f}"
        if float(shown) < 1000 or unit == "TB":
            break
    return f"{shown.replace('.', ',')} {unit} ({exact})"


def _de_datetime(moment: datetime) -> str:
    return f"{moment:%d.%m.%Y, %H:%M:%S}"


def received_text(received_at: datetime) -> str:
    """Time of receipt in Berlin local time, then in UTC."""
    local = received_at.astimezone(BERLIN)
    zone = "MESZ" if local.dst() else "MEZ"
    utc = received_at.astimezone(UTC)
    in_utc = f"{utc:%H:%M:%S}" if utc.date() == local.date() else _de_datetime(utc)
    return f"{_WEEKDAYS[local.weekday()]}, {_de_datetime(local)} Uhr {zone} ({in_utc} UTC)"


def _de_date(value: str) -> str:
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value.strip())
    return f"{match[3]}.{match[2]}.{match[1]}" if match else value


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, float):
        return repr(value).replace(".", ",")
    return str(value)


# -- layout model --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    x: float
    y: float  # top of the line
    w: float
    h: float
    text: str
    style: _Style
    align: str = "L"


@dataclass(frozen=True)
class _Rule:
    x1: float
    x2: float
    y: float
    width: float
    color: tuple[int, int, int]


_Op = _Text | _Rule


@dataclass(frozen=True)
class _Para:
    """A paragraph of a value: where its text starts in the value column, optionally a bullet."""

    text: str
    style: _Style = _VALUE
    indent: float = 0.0
    bullet_at: float | None = None


@dataclass(frozen=True)
class _Line:
    """One set line of a value column."""

    text: str
    style: _Style
    indent: float = 0.0
    bullet_at: float | None = None


class _Layout:
    """First pass: wraps text and breaks pages into lists of drawing operations."""

    def __init__(self) -> None:
        self.pages: list[list[_Op]] = [[]]
        self.y = TOP_FIRST
        self.after_heading = False

    # measuring

    def wrap(self, text: str, style: _Style, width: float) -> list[str]:
        """Lines of at most `width`: breaks at spaces and after hyphens, inside a word only if it must.

        Linear in the text (fpdf2's own line breaker re-measures the line for every character).
        """
        measure = style.width
        space = measure(" ")
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line, line_w = "", 0.0
            for word in paragraph.split():
                for n, piece in enumerate(_AFTER_HYPHEN.split(word)):
                    gap = space if line and n == 0 else 0.0
                    piece_w = measure(piece)
                    if line and line_w + gap + piece_w > width:
                        lines.append(line)
                        line, line_w, gap = "", 0.0, 0.0
                    if piece_w > width:
                        for cluster in _clusters(piece):
                            cluster_w = measure(cluster)
                            if line and line_w + cluster_w > width:
                                lines.append(line)
                                line, line_w = "", 0.0
                            line, line_w = line + cluster, line_w + cluster_w
                        continue
                    line = f"{line} {piece}" if gap else line + piece
                    line_w += gap + piece_w
            lines.append(line)
        return lines or [""]

    def fit(self, text: str, style: _Style, width: float) -> str:
        """The text cut to one line with an ellipsis."""
        if style.width(text) <= width:
            return text
        while text and style.width(text + "…") > width:
            text = text[:-1]
        return text.rstrip() + "…"

    # placing

    @property
    def ops(self) -> list[_Op]:
        return self.pages[-1]

    def new_page(self) -> None:
        self.pages.append([])
        self.y = TOP_NEXT

    def ensure(self, height: float) -> bool:
        """Break the page unless `height` fits; True if it broke."""
        if self.y + height > BOTTOM:
            self.new_page()
            return True
        return False

    def at_top(self) -> bool:
        return self.y <= (TOP_FIRST if len(self.pages) == 1 else TOP_NEXT)

    def paragraph(self, text: str, style: _Style, x: float = LEFT, width: float = RIGHT - LEFT) -> None:
        for line in self.wrap(text, style, width):
            self.ensure(style.line_height)
            self.ops.append(_Text(x, self.y, width, style.line_height, line, style))
            self.y += style.line_height

    def rule(self, width: float = 0.2, color: tuple[int, int, int] = (200, 200, 200)) -> None:
        self.ops.append(_Rule(LEFT, RIGHT, self.y, width, color))

    def section(self, title: str) -> None:
        height = _SECTION.line_height + 3.0
        # A heading never ends a page: keep it with the first lines of its content.
        if not self.ensure(height + 6.0 + 2 * _VALUE.line_height) and not self.at_top():
            self.y += 5.0
        self.ops.append(_Text(LEFT, self.y, RIGHT - LEFT, _SECTION.line_height, title, _SECTION))
        self.y += _SECTION.line_height + 0.6
        self.rule(0.35, _ACCENT)
        self.y += 2.4
        self.after_heading = True

    def row(self, label: str, paras: Sequence[_Para], *, separator: bool = True) -> None:
        """A label in the left column and its value beside it; a long value continues on the next page."""
        label_lines = self.wrap(label, _LABEL, LABEL_W) if label else []
        lines = self.value_lines(paras)
        count = max(len(label_lines), len(lines))

        def height(i: int) -> float:
            heights = [_LABEL.line_height if i < len(label_lines) else 0.0]
            if i < len(lines):
                heights.append(lines[i].style.line_height)
            return max(heights)

        self.ensure(sum(height(i) for i in range(min(count, 2))))
        if separator and not self.at_top() and not self.after_heading:
            self.ops.append(_Rule(LEFT, RIGHT, self.y - ROW_GAP / 2, 0.12, (215, 215, 215)))
        for i in range(count):
            h = height(i)  # label and value share the line box, so their baselines meet
            if self.ensure(h) and label and i >= len(label_lines):
                cont = self.fit(f"{label} (Forts.)", _MUTED, LABEL_W)
                self.ops.append(_Text(LEFT, self.y, LABEL_W, h, cont, _MUTED))
            if i < len(label_lines):
                self.ops.append(_Text(LEFT, self.y, LABEL_W, h, label_lines[i], _LABEL))
            if i < len(lines):
                line = lines[i]
                if line.bullet_at is not None:
                    self.ops.append(_Text(VALUE_X + line.bullet_at, self.y, BULLET_W, h, "•", line.style))
                x = VALUE_X + line.indent
                self.ops.append(_Text(x, self.y, RIGHT - x, h, line.text, line.style))
            self.y += h
        self.y += ROW_GAP
        self.after_heading = False

    def value_lines(self, paras: Sequence[_Para]) -> list[_Line]:
        out: list[_Line] = []
        for para in paras:
            for n, text in enumerate(self.wrap(para.text, para.style, VALUE_W - para.indent)):
                out.append(_Line(text, para.style, para.indent, para.bullet_at if n == 0 else None))
        return out


# -- content -------------------------------------------------------------------------------------------


class _Rendition:
    def __init__(self, application: Application, labels: Mapping[str, str], title: str) -> None:
        self.app = application
        self.labels = labels
        self.title = _clean(title, single_line=True)

    # values

    def label(self, path: str, key: str) -> str:
        found = self.labels.get(path) or self.labels.get(key)
        return _clean(found if found else readable(key), single_line=True)

    def paras(self, value: Any, path: str, indent: float = 0.0) -> list[_Para]:
        """A form value as paragraphs: lists become bullets, nested structures are indented."""
        if _is_empty(value):
            return [_Para("—", _MUTED, indent)]
        if isinstance(value, Mapping):
            out: list[_Para] = []
            for key, item in value.items():
                name = self.label(f"{path}.{key}", str(key))
                if _is_empty(item) or not isinstance(item, Mapping | list):
                    text = _clean(_scalar(item)) if not _is_empty(item) else "—"
                    out.append(_Para(f"{name}: {text}", _VALUE, indent))
                else:
                    out.append(_Para(f"{name}:", _VALUE, indent))
                    out.extend(self.paras(item, f"{path}.{key}", indent + INDENT))
            return out
        if isinstance(value, list):
            out = []
            for item in value:
                if isinstance(item, Mapping | list) and not _is_empty(item):
                    sub = self.paras(item, path, indent + BULLET_W)
                    if sub[0].bullet_at is None:
                        sub[0] = replace(sub[0], bullet_at=indent)
                    out.extend(sub)
                else:
                    text = _clean(_scalar(item)) if not _is_empty(item) else "—"
                    out.append(_Para(text, _VALUE, indent + BULLET_W, bullet_at=indent))
            return out
        return [_Para(_clean(_scalar(value)), _VALUE, indent)]

    # sections

    def lay_out(self, layout: _Layout) -> None:
        app = self.app
        layout.paragraph("Elektronisch eingegangener Antrag", _KICKER)
        layout.y += 1.0
        layout.paragraph(self.title, _TITLE)
        layout.y += 1.5
        layout.rule(0.6, _ACCENT)
        layout.y += 4.0

        service = _clean(app.service, single_line=True)
        service_text = readable(service)
        if service_text.lower() != service.lower():
            service_text += f" ({service})"
        header: list[tuple[str, list[_Para]]] = [("Leistung", _one(service_text))]
        if app.file_number:
            header.append(("Aktenzeichen", _one(_clean(app.file_number), _STRONG)))
        header += [
            ("Eingegangen am", _one(received_text(app.received_at))),
            ("Antrags-ID", _one(_clean(app.id), _CODE)),
            ("Externe Kennung", _one(_clean(app.external_id), _CODE)),
            ("Eingangskanal", _one(_clean(app.source))),
        ]
        for label, paras in header:
            layout.row(label, paras, separator=False)

        applicant = self.applicant_rows(app.applicant)
        if applicant:
            layout.section("Antragsteller")
            for label, paras in applicant:
                layout.row(label, paras)

        layout.section("Identitätsnachweis")
        for label, paras in self.identity_rows(app.identity):
            layout.row(label, paras)

        layout.section("Angaben im Antrag")
        if not app.form:
            layout.row("", _one("Es wurden keine Formularangaben übermittelt.", _MUTED), separator=False)
        for name, value in app.form.items():
            layout.row(self.label(name, name), self.paras(value, name))

        count = len(app.attachments)
        layout.section(f"Anlagen ({count})" if count else "Anlagen")
        if not count:
            layout.row("", _one("Keine Anlagen.", _MUTED), separator=False)
        for number, attachment in enumerate(app.attachments, start=1):
            layout.row(f"Anlage {number}", self.attachment_paras(attachment))

    def applicant_rows(self, party: Party) -> list[tuple[str, list[_Para]]]:
        rows: list[tuple[str, str, _Style]] = []

        def add(label: str, value: str | None, style: _Style = _VALUE) -> None:
            if value and value.strip():
                rows.append((label, _clean(value, single_line=True), style))

        names = " ".join(n for n in (party.given_name, party.family_name) if n)
        add("Name", names, _STRONG)
        add("Organisation", party.organisation, _STRONG if not names else _VALUE)
        add("Geburtsname", party.birth_name)
        add("Geburtsdatum", _de_date(party.birth_date) if party.birth_date else None)
        add("Geburtsort", party.birth_place)
        if party.address is not None:
            address = _address(party.address)
            if address:
                rows.append(("Anschrift", address, _VALUE))
        add("E-Mail", party.email)
        add("Telefon", party.phone)
        return [(label, [_Para(text, style)]) for label, text, style in rows]

    def identity_rows(self, identity: Identity) -> list[tuple[str, list[_Para]]]:
        rows: list[tuple[str, str, _Style]] = []
        if identity.level is None:
            rows.append(("Vertrauensniveau", "nicht nachgewiesen", _STRONG))
        else:
            rows.append(
                (
                    "Vertrauensniveau",
                    f"{identity.level.value} (STORK-QAA-Level {identity.level.rank})",
                    _STRONG,
                )
            )
        if identity.means:
            rows.append(("Nachweis mit", _clean(identity.means, single_line=True), _VALUE))
        asserted = _ASSERTED_BY.get(identity.asserted_by or "", identity.asserted_by or "")
        provider = _PROVIDERS.get((identity.provider or "").lower(), identity.provider or "")
        provider, asserted = _clean(provider, single_line=True), _clean(asserted, single_line=True)
        by = f"{provider} ({asserted})" if provider and asserted else provider or asserted
        if by:
            rows.append(("Bestätigt durch", by, _VALUE))
        if identity.verified:
            when = identity.verified_at
            checked = "ja" if when is None else f"ja, am {_de_datetime(when.astimezone(BERLIN))} Uhr"
            rows.append(("Geprüft", checked, _VALUE))
        elif identity.level is not None:
            rows.append(("Geprüft", "nein (Angabe des Absenders)", _VALUE))
        return [(label, [_Para(text, style)]) for label, text, style in rows]

    def attachment_paras(self, attachment: Attachment) -> list[_Para]:
        paras = [
            _Para(_clean(attachment.name, single_line=True), _STRONG),
            _Para(f"{_clean(attachment.media_type, single_line=True)} · {human_size(attachment.size)}"),
        ]
        if attachment.field:
            paras.append(_Para(f"hochgeladen über: {self.label(attachment.field, attachment.field)}", _MUTED))
        paras.append(_Para("Prüfsumme (SHA-256):", _MUTED))
        paras.append(_Para(_clean(attachment.sha256, single_line=True), _CODE))
        return paras


def _one(text: str, style: _Style = _VALUE) -> list[_Para]:
    return [_Para(text, style)]


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, Mapping | list) and not value)


def _address(address: Address) -> str:
    city = " ".join(p for p in (address.postal_code, address.city) if p)
    parts = [p for p in (address.street, city, address.country) if p and p.strip()]
    return ", ".join(_clean(p, single_line=True) for p in parts)


# -- drawing -------------------------------------------------------------------------------------------


def _draw(pdf: Document, op: _Op) -> None:
    if isinstance(op, _Rule):
        pdf.rule(op.x1, op.x2, op.y, op.width, op.color)
    else:
        style = op.style
        pdf.text(op.x, op.y, op.w, op.h, op.text, style.font, style.size, style.color, op.align)


def render_application(
    application: Application, labels: Mapping[str, str] | None = None, title: str | None = None
) -> bytes:
    """The application as a PDF for the e-file: same application in, same bytes out."""
    labels = labels or {}
    title = title or f"Antrag: {readable(application.service)}"
    rendition = _Rendition(application, labels, title)
    layout = _Layout()
    rendition.lay_out(layout)

    total = len(layout.pages)
    reference = f"Az. {application.file_number}" if application.file_number else application.id
    reference = layout.fit(_clean(reference, single_line=True), _SMALL, 80.0)
    running_title = layout.fit(rendition.title, _SMALL, RIGHT - LEFT - _SMALL.width(reference) - 8.0)
    generated = _clean(f"Erzeugt von Aktenhub · {application.id}", single_line=True)
    footer_left = layout.fit(generated, _SMALL, 125.0)
    pdf = Document(PAGE_W, PAGE_H)
    for number, ops in enumerate(layout.pages, start=1):
        pdf.add_page()
        if number > 1:
            _draw(pdf, _Text(LEFT, 11.0, RIGHT - LEFT, 5.0, running_title, _SMALL))
            _draw(pdf, _Text(LEFT, 11.0, RIGHT - LEFT, 5.0, reference, _SMALL, "R"))
            _draw(pdf, _Rule(LEFT, RIGHT, 16.5, 0.2, (190, 190, 190)))
        for op in ops:
            _draw(pdf, op)
        _draw(pdf, _Rule(LEFT, RIGHT, PAGE_H - 16.0, 0.2, (190, 190, 190)))
        _draw(pdf, _Text(LEFT, PAGE_H - 14.5, RIGHT - LEFT, 5.0, footer_left, _SMALL))
        _draw(pdf, _Text(LEFT, PAGE_H - 14.5, RIGHT - LEFT, 5.0, f"Seite {number} von {total}", _SMALL, "R"))
    return pdf.output(
        title=rendition.title,
        subject=f"Antrag {application.id}",
        creator="Aktenhub",
        created=application.received_at,
        lang="de-DE",
    )


def render_application_json(
    application_json: str, labels: Mapping[str, str] | None = None, title: str | None = None
) -> bytes:
    """`render_application` for another process: the application comes as its JSON."""
    return render_application(Application.model_validate_json(application_json), labels, title)
