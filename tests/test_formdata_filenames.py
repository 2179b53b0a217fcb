"""Uploaded file names: the usual ones kept as sent, the edge cases cut the same way as ever."""

from __future__ import annotations

import pytest

from hub.formdata.submission import MAX_FILENAME_LENGTH, safe_filename


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("Nachweis.pdf", "Nachweis.pdf"),
        ("Scan (2)_final-v1.PDF", "Scan (2)_final-v1.PDF"),
        ("trailing.", "trailing."),
        ("a..b", "a..b"),
        ("x" * MAX_FILENAME_LENGTH, "x" * MAX_FILENAME_LENGTH),
        ("x" * (MAX_FILENAME_LENGTH + 1), "x" * MAX_FILENAME_LENGTH),
        ("x" * (MAX_FILENAME_LENGTH - 3) + ".pdf", "x" * (MAX_FILENAME_LENGTH - 4) + ".pdf"),
        (".hidden", "hidden"),
        ("..pdf", "pdf"),
        (" Scan 1 .pdf ", "Scan 1 .pdf"),
        ("-rf", "-rf"),
        ("C:\\fakepath\\scan.pdf", "scan.pdf"),
        ("../../etc/passwd", "passwd"),
        ("Antrag%20M%C3%BCller.pdf", "Antrag Müller.pdf"),
        ("exe\u202e.pdf", "exe.pdf"),
        ("tab\there.pdf", "tabhere.pdf"),
        ("", "anhang-1"),
        ("...", "anhang-1"),
    ],
)
def test_file_names_are_kept_or_cut_to_their_last_safe_component(sent: str, kept: str) -> None:
    assert safe_filename(sent, "anhang-1") == kept
