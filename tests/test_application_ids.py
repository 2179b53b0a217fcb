"""Application ids sort in the order they were made: a new application's rows go in at one end of the
journal's indexes on its id, so an intake costs no more with a million finished applications than with
none (``bench/claim.py`` measures it)."""

from __future__ import annotations

import os
import re
import uuid

from hub.models import Application, new_id


def test_ids_made_later_sort_after_earlier_ones_within_and_across_milliseconds() -> None:
    ids = [new_id() for _ in range(5000)]  # many within one millisecond, some across

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_application_id_keeps_its_form() -> None:
    first, second = (Application(source="formcycle", external_id=f"FC-{n}", service="x") for n in (1, 2))

    assert re.fullmatch(r"app_[0-9a-f]{32}", first.id)
    assert first.id < second.id


def test_an_id_is_a_uuid_version_7_with_its_random_bits_varying() -> None:
    ids = [uuid.UUID(new_id().removeprefix("app_")) for _ in range(2000)]

    assert {(u.version, u.variant) for u in ids} == {(7, uuid.RFC_4122)}
    # The 74 random bits (the pool of random bytes is taken 4 KiB at a time): no two alike, and each
    # of the last 62 bits set in some ids and clear in others.
    randoms = [(u.int >> 64 & 0xFFF) << 62 | u.int & (1 << 62) - 1 for u in ids]
    assert len(set(randoms)) == len(randoms)
    assert all(0 < sum(r >> bit & 1 for r in randoms) < len(randoms) for bit in range(62))


def test_a_forked_process_makes_ids_of_its_own() -> None:
    new_id()  # the parent's pool of random bytes is filled
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child writes its next ids and leaves at once
        os.write(write, " ".join(new_id() for _ in range(20)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as answer:
        childs = {i[-18:] for i in answer.read().split()}  # the low random bits
    parents = {new_id()[-18:] for _ in range(20)}
    assert len(childs) == 20 and not childs & parents
