"""A part's Content-Disposition: the direct read of the plain form agrees with the general parser."""

from __future__ import annotations

import pytest
from python_multipart.multipart import parse_options_header

from hub.formdata.multipart import _disposition

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
