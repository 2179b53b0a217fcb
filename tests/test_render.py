"""The PDF rendition: complete, readable for a clerk, full Unicode, byte-for-byte deterministic."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from hub.models import Address, Application, Attachment, Identity, Party, TrustLevel
from hub.render import human_size, readable, received_text, render_application
from hub.typeset import load_font

SHA_A = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHA_B = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# DIN 91379 allows a base letter with combining marks that has no precomposed form: S + cedilla + caron.
COMBINING = "S\u0327\u030c"

LABELS = {
    "jagdschein_art": "Art des Jagdscheins",
    "waffen": "Angemeldete Waffen",
    "versicherung": "Haftpflichtversicherung",
    "versicherung.gesellschaft": "Versicherer",
    "mitjaeger.name": "Name der Person",
}


def _application(**changes: Any) -> Application:
    app = Application(
        id="app_3f9c2a7e1b6d4e0f8a2c5d7b9e1f3a5c",
        source="formcycle",
        external_id="fc-2025-000815",
        service="jagdschein",
        received_at=datetime(2025, 3, 12, 13, 37, 5, tzinfo=UTC),
        file_number="32.2-2025-00042",
        applicant=Party(
            given_name="Marie-Thérèse",
            family_name="Łukasiewicz-Öztürk",
            birth_date="1984-07-09",
            address=Address(street="Große Straße 12a", postal_code="48143", city="Münster"),
            email="m.lukasiewicz@example.org",
        ),
        identity=Identity(
            verified=True,
            provider="bundid",
            asserted_by="idp",
            level=TrustLevel.SUBSTANTIELL,
            means="eID",
        ),
        form={
            "jagdschein_art": "Jahresjagdschein",
            "anzahl_der_reviere": "2",
            "waffen": ["Repetierbüchse .308 Win.", "Flinte 12/76"],
            "versicherung": {
                "gesellschaft": "Ayşe Çelik Versicherungs-AG",
                "policennummer": f"JH-{COMBINING}",
            },
            "mitjaeger": [
                {"name": "Zoë d'Aubigné", "rolle": "Begleitung"},
                {"name": "Ðorđe Ðorđević", "rolle": "Ausbilder"},
            ],
            "zuverlaessig": True,
        },
        attachments=[
            Attachment(
                name="Nachweis Jägerprüfung.pdf",
                media_type="application/pdf",
                size=1_234_567,
                sha256=SHA_A,
                blob=f"sha256:{SHA_A}",
            ),
            Attachment(
                name="Passbild.jpg",
                media_type="image/jpeg",
                size=48_213,
                sha256=SHA_B,
                blob=f"sha256:{SHA_B}",
            ),
        ],
    )
    return app.model_copy(update=changes)


def _pages(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    return [unicodedata.normalize("NFC", page.extract_text()) for page in reader.pages]


def _text(pdf: bytes) -> str:
    return "\n".join(_pages(pdf))


def _squeezed(text: str) -> str:
    """Text without white space: a wrapped value is still found."""
    return "".join(unicodedata.normalize("NFC", text).split())


def test_the_rendition_shows_header_applicant_identity_fields_and_attachments() -> None:
    pdf = render_application(_application(), LABELS, "Antrag auf Erteilung eines Jagdscheins")

    assert pdf.startswith(b"%PDF-")
    text = _text(pdf)
    for expected in [
        "Antrag auf Erteilung eines Jagdscheins",
        "Aktenzeichen",
        "32.2-2025-00042",
        "Eingegangen am",
        "12.03.2025, 14:37:05 Uhr MEZ (13:37:05 UTC)",
        "app_3f9c2a7e1b6d4e0f8a2c5d7b9e1f3a5c",
        "fc-2025-000815",
        "Antragsteller",
        "Marie-Thérèse Łukasiewicz-Öztürk",
        "09.07.1984",
        "Große Straße 12a, 48143 Münster",
        "m.lukasiewicz@example.org",
        "Identitätsnachweis",
        "substantiell",
        "eID",
        "BundID",
        # every label (from the mapping, or the field name made readable) and every value
        "Art des Jagdscheins",
        "Jahresjagdschein",
        "Anzahl der Reviere",
        "Angemeldete Waffen",
        "Repetierbüchse .308 Win.",
        "Flinte 12/76",
        "Haftpflichtversicherung",
        "Versicherer: Ayşe Çelik Versicherungs-AG",
        "Policennummer: JH-" + unicodedata.normalize("NFC", COMBINING),
        "Mitjaeger",
        "Name der Person: Zoë d'Aubigné",
        "Name der Person: Ðorđe Ðorđević",
        "Rolle: Ausbilder",
        "Zuverlaessig",
        "ja",
        "Anlagen (2)",
        "Nachweis Jägerprüfung.pdf",
        "application/pdf · 1,2 MB (1.234.567 Bytes)",
        SHA_A,
        "Passbild.jpg",
        "image/jpeg · 48,2 kB (48.213 Bytes)",
        SHA_B,
        "Erzeugt von Aktenhub · app_3f9c2a7e1b6d4e0f8a2c5d7b9e1f3a5c",
        f"Seite 1 von {len(_pages(pdf))}",
    ]:
        assert expected in text, expected
    # submission order: list items as bullets, in order
    assert text.index("Art des Jagdscheins") < text.index("Angemeldete Waffen") < text.index("Mitjaeger")
    assert "• Repetierbüchse" in text


# DIN 91379 datatype A (names of natural persons): its letters and the combining marks of its sequences.
DIN_91379_LETTERS = [
    (0x00C0, 0x00D6), (0x00D8, 0x00F6), (0x00F8, 0x017E), (0x0187, 0x0188), (0x018F, 0x018F),
    (0x0197, 0x0197), (0x01A0, 0x01A1), (0x01AF, 0x01B0), (0x01B7, 0x01B7), (0x01CD, 0x01DC),
    (0x01DE, 0x01DF), (0x01E2, 0x01F0), (0x01F4, 0x01F5), (0x01F8, 0x01FF), (0x0212, 0x0213),
    (0x0218, 0x021B), (0x021E, 0x021F), (0x0227, 0x0233), (0x0259, 0x0259), (0x0268, 0x0268),
    (0x0292, 0x0292), (0x02B9, 0x02BA), (0x02BE, 0x02BF), (0x02C8, 0x02C8), (0x02CC, 0x02CC),
    (0x1E02, 0x1E03), (0x1E06, 0x1E07), (0x1E0A, 0x1E11), (0x1E17, 0x1E17), (0x1E1C, 0x1E2B),
    (0x1E2F, 0x1E37), (0x1E3A, 0x1E3B), (0x1E40, 0x1E49), (0x1E52, 0x1E5B), (0x1E5E, 0x1E63),
    (0x1E6A, 0x1E6F), (0x1E80, 0x1E87), (0x1E8C, 0x1E97), (0x1E9E, 0x1E9E), (0x1EA0, 0x1EF9),
]  # fmt: skip
DIN_91379_MARKS = [
    0x0300, 0x0301, 0x0302, 0x0304, 0x0306, 0x0307, 0x0308, 0x030B, 0x030C, 0x030D, 0x0310,
    0x0315, 0x031B, 0x0323, 0x0325, 0x0326, 0x0327, 0x0328, 0x0331, 0x035F,
]  # fmt: skip


def test_every_din_91379_name_character_has_a_glyph(caplog: pytest.LogCaptureFixture) -> None:
    letters = "".join(chr(c) for first, last in DIN_91379_LETTERS for c in range(first, last + 1))
    marked = " ".join(f"K{chr(mark)}" for mark in DIN_91379_MARKS)
    applicant = Party(given_name=marked, family_name=letters)

    with caplog.at_level(logging.WARNING):
        pdf = render_application(_application(applicant=applicant))

    assert not [r for r in caplog.records if "missing" in r.getMessage()]
    assert _squeezed(letters) in _squeezed(_text(pdf))
    assert _squeezed(marked) in _squeezed(_text(pdf))


# DIN 91379 datatype C adds Greek and Cyrillic letters and the printable characters of Latin-1.
DIN_91379_OTHER = [
    (0x0020, 0x007E), (0x00A0, 0x00FF), (0x0386, 0x0386), (0x0388, 0x038A), (0x038C, 0x038C),
    (0x038E, 0x03A1), (0x03A3, 0x03CE), (0x0401, 0x040C), (0x040E, 0x044F), (0x0451, 0x045C),
    (0x045E, 0x045F), (0x20AC, 0x20AC),
]  # fmt: skip


@pytest.mark.parametrize("font", ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"])
def test_the_shipped_fonts_cover_din_91379(font: str) -> None:
    glyphs = load_font(font).glyphs
    wanted = [c for first, last in DIN_91379_LETTERS + DIN_91379_OTHER for c in range(first, last + 1)]
    missing = [f"U+{c:04X}" for c in wanted + DIN_91379_MARKS if not glyphs.get(c)]
    assert not missing


def test_fonts_are_embedded_truetype_subsets() -> None:
    reader = PdfReader(io.BytesIO(render_application(_application(), LABELS)))
    fonts: dict[str, DictionaryObject] = {}
    for page in reader.pages:
        resources = page["/Resources"].get_object()
        for font in resources["/Font"].get_object().values():
            font = font.get_object()
            fonts[str(font["/BaseFont"])] = font
    assert fonts
    for name, font in fonts.items():
        assert font["/Subtype"] == "/Type0", name  # no base-14 font: those cannot show Ł or Ş̌
        descendant = font["/DescendantFonts"][0].get_object()
        font_file = descendant["/FontDescriptor"].get_object()["/FontFile2"].get_object().get_data()
        embedded = TTFont(io.BytesIO(font_file))
        glyf = embedded["glyf"]
        drawn = [g for g in embedded.getGlyphOrder() if glyf[g].numberOfContours != 0]
        assert 10 < len(drawn) < 120, name  # only the glyphs this document shows, not DejaVu's 6000
        assert re.fullmatch(r"/[A-Z]{6}\+DejaVuSans(-Bold|Mono)?", name), name  # subset tag + PostScript name
    assert {name.split("+")[1] for name in fonts} == {"DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono"}


def test_subset_tag_depends_on_the_glyphs_only() -> None:
    def base_fonts(pdf: bytes) -> set[str]:
        return set(re.findall(rb"/BaseFont /([A-Z]{6}\+DejaVuSans[-\w]*)", pdf))

    app = _application()
    same_glyphs = _application(id="app_3f9c2a7e1b6d4e0f8a2c5d7b9e1f3a5d")  # c and d are shown anyway
    assert base_fonts(render_application(app)) == base_fonts(render_application(same_glyphs))
    other = _application(external_id="fc-2025-QX")  # Q and X appear nowhere else in the mono font
    assert base_fonts(render_application(app)) != base_fonts(render_application(other))


def test_same_application_gives_identical_bytes() -> None:
    app = _application()
    assert render_application(app, LABELS) == render_application(app.model_copy(deep=True), dict(LABELS))


def test_identical_bytes_in_another_process_with_another_hash_seed() -> None:
    app = _application()
    script = (
        "import sys; from hub.models import Application; from hub.render import render_application; "
        "sys.stdout.buffer.write(render_application(Application.model_validate_json(sys.stdin.read())))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4711"}
    other = subprocess.run(
        [sys.executable, "-c", script],
        input=app.model_dump_json().encode(),
        capture_output=True,
        env=env,
        check=True,
    ).stdout
    assert other == render_application(app)


def test_font_embeddings_kept_from_earlier_renditions_give_the_same_bytes_as_fresh_ones() -> None:
    app, other = _application(), _application(external_id="fc-2025-QX", form={"feld": "Ǆemal Ŧ"})
    script = (
        "import sys; from hub.models import Application; from hub.render import render_application; "
        "sys.stdout.buffer.write(render_application(Application.model_validate_json(sys.stdin.read()), "
        f"{LABELS!r}))"
    )
    fresh = subprocess.run(  # a new process: every font embedding is made for this document
        [sys.executable, "-c", script], input=app.model_dump_json().encode(), capture_output=True, check=True
    ).stdout
    first = render_application(app, LABELS)
    render_application(other, LABELS)  # other glyph sets in between
    assert render_application(app, LABELS) == first == fresh


def test_different_application_gives_different_bytes() -> None:
    app = _application()
    changed = _application(form={**app.form, "jagdschein_art": "Tagesjagdschein"})
    assert render_application(app) != render_application(changed)
    assert render_application(app) != render_application(_application(id="app_other"))


def test_creation_date_comes_from_the_application() -> None:
    reader = PdfReader(io.BytesIO(render_application(_application(), title="Antrag")))
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20250312133705Z"
    assert reader.metadata["/Title"] == "Antrag"


def test_defaults_without_labels_and_title() -> None:
    pdf = render_application(_application())
    text = _text(pdf)
    assert "Antrag: Jagdschein" in text
    assert "Jagdschein Art" in text  # field name made readable
    assert "Anzahl der Reviere" in text


def test_identity_not_proven() -> None:
    text = _text(render_application(_application(identity=Identity())))
    assert "Vertrauensniveau nicht nachgewiesen" in text


def test_no_applicant_data_means_no_applicant_section() -> None:
    text = _text(render_application(_application(applicant=Party(), form={}, attachments=[])))
    assert "Antragsteller" not in text
    assert "Es wurden keine Formularangaben übermittelt." in text
    assert "Keine Anlagen." in text


def test_summer_time_and_dates_across_midnight() -> None:
    assert received_text(datetime(2025, 7, 1, 22, 30, tzinfo=UTC)) == (
        "Mittwoch, 02.07.2025, 00:30:00 Uhr MESZ (01.07.2025, 22:30:00 UTC)"
    )


def test_a_long_value_wraps_and_continues_on_the_next_page() -> None:
    long_text = " ".join(f"Satz{i} mit Begründung." for i in range(900))
    pdf = render_application(_application(form={"begruendung": long_text, "danach": "Ende"}))
    pages = _pages(pdf)
    assert len(pages) >= 3
    text = "\n".join(pages)
    assert [int(n) for n in re.findall(r"Satz(\d+)\s+mit", text)] == list(range(900))
    assert text.count("Begründung.") == 900
    assert "Begruendung (Forts.)" in pages[1]
    assert "Danach Ende" in pages[-1]


def test_300_fields_flow_over_several_pages_in_order() -> None:
    form: dict[str, Any] = {f"f{i:03d}": f"Antwort {i:03d} " + "weiter " * (i % 25) for i in range(300)}
    labels = {f"f{i:03d}": f"Frage {i:03d}" for i in range(300)}
    pages = _pages(render_application(_application(form=form), labels))

    total = len(pages)
    assert total >= 5
    for number, page in enumerate(pages, start=1):
        assert f"Seite {number} von {total}" in page
        assert "Erzeugt von Aktenhub · app_3f9c2a7e1b6d4e0f8a2c5d7b9e1f3a5c" in page
    text = "\n".join(pages)
    positions = [text.index(f"Frage {i:03d}") for i in range(300)]
    assert positions == sorted(positions)
    assert all(f"Antwort {i:03d}" in text for i in range(300))
    assert SHA_A in pages[-1]


def test_user_text_is_shown_literally() -> None:
    text = _text(render_application(_application(form={"notiz": "{nb} Seite\x00n\tund\r\nmehr"})))
    assert "{nb} Seiten und" in text
    assert "mehr" in text


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 Bytes"),
        (1, "1 Byte"),
        (999, "999 Bytes"),
        (1000, "1,0 kB (1.000 Bytes)"),
        (999_950, "1,0 MB (999.950 Bytes)"),
        (5_368_709_120, "5,4 GB (5.368.709.120 Bytes)"),
    ],
)
def test_sizes_the_german_way(size: int, shown: str) -> None:
    assert human_size(size) == shown


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("anzahl_der_personen", "Anzahl der Personen"),
        ("geburtsDatum", "Geburts Datum"),
        ("kindertagespflege-erlaubnis", "Kindertagespflege Erlaubnis"),
        ("jagdschein", "Jagdschein"),
    ],
)
def test_field_names_made_readable(name: str, shown: str) -> None:
    assert readable(name) == shown


def test_a_character_the_font_lacks_is_drawn_as_the_empty_box() -> None:
    pdf = render_application(_application(form={"notiz": "Grüße \U0001f600 日本 Ende"}))
    assert "Notiz Grüße" in _text(pdf)
    assert "Ende" in _text(pdf)
