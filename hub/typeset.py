"""A lean PDF writer for text and rules: fonts measured once per process, embedded as per-document subsets.

Fonts are TrueType files measured once per process (fontTools) and embedded in each document as a
CIDFontType2 subset of the glyphs that document uses (HarfBuzz' subsetter, keeping glyph ids, so the
content stream shows original glyph ids and CIDToGIDMap is /Identity). Each font carries a ToUnicode
map, so text extraction and search in a viewer give back the characters. No shaping: characters are set
one glyph each with their advance widths (combining marks of DejaVu have none and sit on their base).

This replaces fpdf2 for the rendition: fpdf2 parsed each TTF again for every document and subset it
with fontTools' pure-Python subsetter, ~100 ms of CPU per two-page document; here a document costs a
few milliseconds. The PDF objects are written with pydyf (WeasyPrint's low-level writer).

Coordinates are in millimetres from the top left of the page, as the layout thinks; the PDF's own
origin (bottom left, points) stays inside this module.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pydyf
import uharfbuzz as hb
from fontTools.ttLib import TTFont

PT = 25.4 / 72  # mm per point
_K = 72 / 25.4  # points per mm

FONT_DIR = Path(__file__).with_name("fonts")

# Tables a PDF viewer never reads from an embedded CIDFontType2 (it lays out nothing itself).
_DROPPED_TABLES = ("GSUB", "GPOS", "GDEF", "kern", "morx", "feat", "name", "post", "FFTM", "MATH", "JSTF")


@dataclass(frozen=True, eq=False)
class Font:
    """A TrueType font, measured once: advance widths per character in 1/1000 em and its glyph ids."""

    postscript_name: str
    widths: dict[int, int]  # code point -> advance (1/1000 em)
    glyphs: dict[int, int]  # code point -> glyph id
    glyph_widths: dict[int, int]  # glyph id -> advance (1/1000 em), for the /W array
    hex_glyphs: _HexGlyphs = field(repr=False)  # code point -> glyph id as 4 hex digits (str.translate table)
    missing_width: int  # advance of .notdef, what a character the font lacks takes
    descriptor: dict[str, object]
    face: hb.Face = field(repr=False)
    # Recently embedded glyph sets: the same characters give the same embedding (a pure function of
    # them), and subsetting + compressing costs ~0.1-0.3 ms per font and document. Forms share their
    # labels, ids are hex digits: the monospaced font's set almost always repeats.
    _embeddings: OrderedDict[tuple[tuple[int, str], ...], Embedding] = field(
        default_factory=OrderedDict, repr=False
    )
    _embeddings_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def width(self, text: str, size: float) -> float:
        """Width of `text` set at `size` points, in millimetres."""
        widths, missing = self.widths, self.missing_width
        return sum([widths.get(ord(c), missing) for c in text]) * size * 0.001 * PT

    def subset(self, glyph_ids: Iterable[int]) -> bytes:
        """The font file with only these glyphs' outlines; glyph ids stay as they are."""
        plan = hb.SubsetInput()
        plan.glyph_set.update(glyph_ids)
        plan.glyph_set.add(0)
        plan.flags = hb.SubsetFlags.RETAIN_GIDS | hb.SubsetFlags.NO_LAYOUT_CLOSURE
        plan.drop_table_tag_set.update(int.from_bytes(tag.encode("ascii")) for tag in _DROPPED_TABLES)
        subset = hb.subset(self.face, plan)
        if subset is None:
            raise RuntimeError(f"HarfBuzz could not subset {self.postscript_name}")
        return bytes(subset.blob.data)

    def embedding(self, chars: dict[int, str]) -> Embedding:
        """What a document embeds of this font to show these glyphs (glyph id -> its character)."""
        key = tuple(sorted(chars.items()))
        with self._embeddings_lock:
            found = self._embeddings.get(key)
            if found is not None:
                self._embeddings.move_to_end(key)
                return found
        made = _embed(self, key)  # outside the lock: another thread may make the same, equal one
        with self._embeddings_lock:
            self._embeddings[key] = made
            if len(self._embeddings) > EMBEDDINGS_KEPT:
                self._embeddings.popitem(last=False)
        return made


EMBEDDINGS_KEPT = 256  # per font; an embedding is ~5-15 kB


@dataclass(frozen=True)
class Embedding:
    """A font's objects for one glyph set, ready to write: compressed streams and the /W array."""

    base_font: str  # /TAG+PostScriptName
    font_file: bytes  # the subset, Flate-compressed
    widths: str  # the /W array's content
    to_unicode: bytes  # the ToUnicode CMap, Flate-compressed


def _embed(font: Font, chars: tuple[tuple[int, str], ...]) -> Embedding:
    gids = [gid for gid, _ in chars]
    # The subset tag names the glyph set (ISO 32000-1, 9.6.4): same glyphs, same tag.
    digest = hashlib.sha256(f"{font.postscript_name}:{gids}".encode()).digest()
    tag = "".join(chr(65 + b % 26) for b in digest[:6])
    return Embedding(
        base_font=f"/{tag}+{font.postscript_name}",
        font_file=_compress(font.subset(gids)),
        # Written as one string: a pydyf object per glyph costs more than all the rest of the font.
        widths=" ".join(f"{gid} [{font.glyph_widths[gid]}]" for gid in gids),
        to_unicode=_compress(_to_unicode_cmap(chars)),
    )


class _HexGlyphs(dict[int, str]):
    """Code point -> the glyph id as it is shown (4 hex digits); a character the font lacks is .notdef."""

    def __missing__(self, code_point: int) -> str:
        return "0000"


_loaded: dict[str, Font] = {}
_loading = threading.Lock()


def load_font(filename: str) -> Font:
    """A font of the hub's font folder, read and measured once per process."""
    font = _loaded.get(filename)
    if font is None:
        # Renditions may run in threads: one Font object per file, or a document could embed one twice.
        with _loading:
            font = _loaded.get(filename) or _loaded.setdefault(filename, _measure(filename))
    return font


def _measure(filename: str) -> Font:
    data = (FONT_DIR / filename).read_bytes()
    tt = TTFont(io.BytesIO(data), lazy=True)
    scale = 1000 / int(tt["head"].unitsPerEm)
    hmtx: dict[str, tuple[int, int]] = tt["hmtx"].metrics
    order = tt.getGlyphOrder()

    # Rounded half up like fpdf2 did, so lines wrap exactly where they wrapped before.
    def advance(glyph: str) -> int:
        return round(scale * int(hmtx[glyph][0]) + 0.001)

    cmap = tt.getBestCmap()
    gid = {name: n for n, name in enumerate(order)}
    head, hhea, os2, post = tt["head"], tt["hhea"], tt["OS/2"], tt["post"]
    flags = 4  # symbolic: the font's own encoding, not a standard Latin one
    if post.isFixedPitch:
        flags |= 1
    descriptor: dict[str, object] = {
        "Type": "/FontDescriptor",
        "Flags": flags,
        "FontBBox": pydyf.Array([round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)]),
        "ItalicAngle": int(post.italicAngle),
        "Ascent": round(hhea.ascent * scale),
        "Descent": round(hhea.descent * scale),
        "CapHeight": round(getattr(os2, "sCapHeight", hhea.ascent) * scale),
        "StemV": round(50 + int(pow(os2.usWeightClass / 65, 2))),
        "MissingWidth": advance(".notdef"),
    }
    return Font(
        postscript_name=str(tt["name"].getDebugName(6)),
        widths={cp: advance(name) for cp, name in cmap.items()},
        glyphs={cp: gid[name] for cp, name in cmap.items()},
        glyph_widths={n: advance(name) for n, name in enumerate(order)},
        hex_glyphs=_HexGlyphs({cp: f"{gid[name]:04X}" for cp, name in cmap.items()}),
        missing_width=advance(".notdef"),
        descriptor=descriptor,
        # Preprocessed once (HarfBuzz' accelerators for the subsetter): a subset then costs ~0.05 ms
        # instead of ~0.2 ms, with the same bytes out.
        face=hb.subset_preprocess(hb.Face(hb.Blob(data))),
    )


@functools.lru_cache(maxsize=64)  # a handful of colours, set for every line of text
def _color(rgb: tuple[int, int, int]) -> str:
    return " ".join(f"{c / 255:.4f}".rstrip("0").rstrip(".") for c in rgb)


def _num(value: float) -> str:
    return f"{value:.2f}"


class _UsedFont:
    """A font as one document uses it: its resource name and the glyphs it shows."""

    def __init__(self, font: Font, resource: str) -> None:
        self.font = font
        self.resource = resource
        self.chars: dict[int, str] = {}  # glyph id -> the character it stands for (ToUnicode)
        self._seen: set[str] = set()  # characters already looked at for `chars`

    def encode(self, text: str) -> str:
        """The text as the hex string of its glyph ids (Identity-H); notes its glyphs for the subset."""
        glyphs, chars, seen = self.font.glyphs, self.chars, self._seen
        # Each distinct character once, in the order it first appears: the first character shown with
        # a glyph id stays the one ToUnicode names, as when every character was looked at.
        for char in dict.fromkeys(text):
            if char not in seen:
                seen.add(char)
                gid = glyphs.get(ord(char), 0)
                if gid:
                    chars.setdefault(gid, char)
        # One C-level pass over the text: formatting a hex string per character in Python cost ~0.4 ms
        # per rendition (a quarter of its Python time).
        return text.translate(self.font.hex_glyphs)


class Document:
    """A PDF of A4 pages with text and rules, written deterministically."""

    def __init__(self, width: float = 210.0, height: float = 297.0) -> None:
        self.width, self.height = width, height
        self.pages: list[list[str]] = []
        self._fonts: dict[int, _UsedFont] = {}

    def add_page(self) -> None:
        """Start a new page; drawing goes there from now on."""
        self.pages.append(["2 J"])  # projecting caps, as before

    def text(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        text: str,
        font: Font,
        size: float,
        color: tuple[int, int, int],
        align: str = "L",
    ) -> None:
        """One line of text in the box (x, y, w, h) mm, vertically centred, left or right ("R") aligned."""
        used = self._fonts.get(id(font))
        if used is None:
            used = self._fonts[id(font)] = _UsedFont(font, f"F{len(self._fonts) + 1}")
        if align == "R":
            x += w - font.width(text, size)
        baseline = y + 0.5 * h + 0.3 * size * PT
        self.pages[-1].append(
            f"q BT /{used.resource} {_num(size)} Tf {_num(x * _K)} {_num((self.height - baseline) * _K)} Td "
            f"{_color(color)} rg <{used.encode(text)}> Tj ET Q"
        )

    def rule(self, x1: float, x2: float, y: float, width: float, color: tuple[int, int, int]) -> None:
        """A horizontal line at y mm, `width` mm thick."""
        y_pt = _num((self.height - y) * _K)
        self.pages[-1].append(
            f"{_color(color)} RG {_num(width * _K)} w {_num(x1 * _K)} {y_pt} m {_num(x2 * _K)} {y_pt} l S"
        )

    def output(self, *, title: str, subject: str, creator: str, created: datetime, lang: str) -> bytes:
        """The PDF file: same drawing and metadata in, same bytes out (the file id is a content hash)."""
        pdf = pydyf.PDF()
        fonts = pydyf.Dictionary({used.resource: self._embed(pdf, used) for used in self._fonts.values()})
        resources = pydyf.Dictionary({"Font": fonts})
        media_box = pydyf.Array([0, 0, _num(self.width * _K), _num(self.height * _K)])
        first: pydyf.Dictionary | None = None
        for ops in self.pages:
            content = _flate(_compress("\n".join(ops).encode("ascii")))
            pdf.add_object(content)
            page = pydyf.Dictionary(
                {
                    "Type": "/Page",
                    "Parent": pdf.pages.reference,
                    "MediaBox": media_box,
                    "Contents": content.reference,
                    "Resources": resources,
                }
            )
            pdf.add_page(page)
            first = first or page
        if first is not None:
            pdf.catalog["OpenAction"] = pydyf.Array([first.reference, "/FitH", "null"])
        pdf.catalog["PageLayout"] = "/OneColumn"
        pdf.catalog["Lang"] = pydyf.String(lang)
        pdf.info.update(
            {
                "Title": pydyf.String(title),
                "Subject": pydyf.String(subject),
                "Creator": pydyf.String(creator),
                "CreationDate": pydyf.String(f"D:{created.astimezone(UTC):%Y%m%d%H%M%S}Z"),
            }
        )
        out = io.BytesIO()
        pdf.write(out, version=b"1.7", identifier=True)
        return out.getvalue()

    def _embed(self, pdf: pydyf.PDF, used: _UsedFont) -> bytes:
        """Add the font's objects (Type0, CIDFontType2, descriptor, subset file, ToUnicode)."""
        font = used.font
        embedding = font.embedding(used.chars)
        base_font = embedding.base_font
        font_file = _flate(embedding.font_file)
        pdf.add_object(font_file)
        descriptor = pydyf.Dictionary(
            {**font.descriptor, "FontName": base_font, "FontFile2": font_file.reference}
        )
        pdf.add_object(descriptor)
        widths = pydyf.Array([embedding.widths])
        cid_font = pydyf.Dictionary(
            {
                "Type": "/Font",
                "Subtype": "/CIDFontType2",
                "BaseFont": base_font,
                "CIDSystemInfo": pydyf.Dictionary(
                    {"Registry": pydyf.String("Adobe"), "Ordering": pydyf.String("Identity"), "Supplement": 0}
                ),
                "FontDescriptor": descriptor.reference,
                "DW": font.missing_width,
                "W": widths,
                "CIDToGIDMap": "/Identity",
            }
        )
        pdf.add_object(cid_font)
        to_unicode = _flate(embedding.to_unicode)
        pdf.add_object(to_unicode)
        type0: pydyf.Dictionary = pydyf.Dictionary(
            {
                "Type": "/Font",
                "Subtype": "/Type0",
                "BaseFont": base_font,
                "Encoding": "/Identity-H",
                "DescendantFonts": pydyf.Array([cid_font.reference]),
                "ToUnicode": to_unicode.reference,
            }
        )
        pdf.add_object(type0)
        reference: bytes = type0.reference
        return reference


def _compress(data: bytes) -> bytes:
    """Flate at level 6: level 9 takes twice the time for a few bytes less."""
    return zlib.compress(data, 6)


def _flate(compressed: bytes) -> pydyf.Stream:
    """A stream of data compressed with `_compress`."""
    return pydyf.Stream([compressed], {"Filter": "/FlateDecode"})


def _to_unicode_cmap(entries: Sequence[tuple[int, str]]) -> bytes:
    """The CMap that maps each glyph id (in order) back to its character (ISO 32000-1, 9.10.3)."""
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    for start in range(0, len(entries), 100):  # at most 100 entries per block
        block = entries[start : start + 100]
        lines.append(f"{len(block)} beginbfchar")
        lines.extend(f"<{gid:04X}> <{char.encode('utf-16-be').hex().upper()}>" for gid, char in block)
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines).encode("ascii")
