"""A part's Content-Disposition: the direct read of the plain form agrees with the general parser."""

from __future__ import annotations

import pytest
from python_multipart.multipart import parse_options_header

from hub.errors import BadSubmission
from hub.formdata.limits import FormLimits
from hub.formdata.multipart import MAX_PART_HEADERS, _disposition, _MultipartReader

HEADERS = [
    b'form-data; name="vorgang_id"',
    b'form-data; name="nachweis"; filename="Nachweis.pdf"',
    b'form-data; name=""',
    b'form-data; name="a"; filename=""',
    b'form-data; name="Gro\xc3\x9f"; filename="Stra\xdfe.pdf"',
    # Not the plain form: the general parser reads these (escapes, Windows paths, case, spacing).
    b'form-data; name="a\\"b"',
    b'form-data; name="x"; filename="C:\\\\Users\\\\x\\\\y.pdf"',
    b'Form-Data; name="a"',
    b'form-data;name="a"',
    b"form-data; name=a",
    b'form-data; name="a"; filename="b"; filename*=UTF-8\'\'c',
    b'attachment; name="a"',
    b"form-data",
]


@pytest.mark.parametrize("header", HEADERS)
def test_disposition_reads_as_python_multipart_does(header: bytes) -> None:
    assert _disposition(header) == parse_options_header(header)


def test_missing_disposition_has_no_type() -> None:
    assert _disposition(None) == (b"", {})


PARTS = [
    [("Content-Disposition", 'form-data; name="vorgang_id"')],
    [("Content-Disposition", 'form-data; name="nachweis"; filename="Nachweis.pdf"')],
    [("Content-Disposition", 'form-data; name="n"; filename="a.pdf"'), ("Content-Type", "application/pdf ")],
    [("Content-Disposition", 'form-data; name="n"'), ("Content-Type", "text/plain; charset=iso-8859-1")],
    [("Content-Disposition", 'form-data; name=""')],
    [("Content-Disposition", 'form-data; name="GroÃ\x9f"; filename="StraÃ\x9fe.pdf"')],
    # An extended file name hidden in a quoted name: the general read takes it for a file.
    [("Content-Disposition", "form-data; name=\"x;filename*=utf-8''a.pdf\"")],
    [("Content-Disposition", 'form-data; name="a*"')],
    [("Content-Disposition", 'form-data; name="a" ')],
    [("Content-Disposition", 'form-data; name="a\\"b"')],
    [("Content-Disposition", 'form-data; name="a'), ("Content-Type", "text/plain")],
    [("Content-Disposition", 'attachment; name="a"')],
    [("Content-Type", "text/plain"), ("Content-Disposition", 'form-data; name="a"')],
    [("Content-Disposition", 'form-data; name="a"'), ("Content-Transfer-Encoding", "base64")],
    [("Content-Disposition", 'form-data; name="a"'), ("Content-Type", "x/" + "y" * (MAX_PART_HEADERS - 50))],
    [("Content-Disposition", 'form-data; name="a"'), ("Content-Type", "x/" + "y" * (MAX_PART_HEADERS - 70))],
]


def _read(headerlist: list[tuple[str, str]], usual: bool) -> object:
    """What the reader takes from a part's headers: the usual-form read, or the general one."""
    reader = _MultipartReader(b"boundary", FormLimits(), blobs=None)  # type: ignore[arg-type]
    try:
        if not usual:
            reader._read_headers(headerlist)
        elif not reader._usual_headers(headerlist):
            return "general"
    except BadSubmission as exc:
        return exc.status, exc.message
    return reader._name, reader._filename, reader._filename_star, reader._content_type


@pytest.mark.parametrize("headerlist", PARTS)
def test_usual_part_headers_read_as_the_general_read_does(headerlist: list[tuple[str, str]]) -> None:
    usual = _read(headerlist, usual=True)
    assert usual in ("general", _read(headerlist, usual=False))


def test_the_usual_forms_take_the_direct_read() -> None:
    taken = [_read(h, usual=True) != "general" for h in PARTS]
    assert taken[:6] == [True] * 6
    assert taken[-2:] == [True, True]  # the second one refused: both headers past the limit
