"""Application ids sort in the order they were made: a new application's rows go in at one end of the
journal's indexes on its id, so an intake costs no more with a million finished applications than with
none (``bench/claim.py`` measures it)."""

from __future__ import annotations

import re

from hub.models import Application, new_id


def test_ids_made_later_sort_after_earlier_ones_within_and_across_milliseconds() -> None:
    ids = [new_id() for _ in range(5000)]  # many within one millisecond, some across

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_application_id_keeps_its_form() -> None:
    first, second = (Application(source="formcycle", external_id=f"FC-{n}", service="x") for n in (1, 2))

    assert re.fullmatch(r"app_[0-9a-f]{32}", first.id)
    assert first.id < second.id
