"""Benchmark: CPU cost of the PDF rendition of one application, in this process.

Renders ``--count`` applications like the end-to-end benchmark's (``bench/e2e.py``): a Jagdschein
via FormCycle with the example mapping ``config/mappings/jagd-und-fischerei.yaml`` (its labels and
title), 13 form fields, 2 attachments listed, applicants with DIN 91379 names (Ł, Ş, Ð, dotless i,
combining marks), each application a different one. The first rendition (imports, font loading) is
reported on its own; the figures are the process CPU time (user + system, ``time.process_time``) of
each rendition after it, so they hold on a shared machine where wall-clock time does not.

Then the same applications go through the hub's render process hop as the pipeline makes it (a helper
process of ``hub.render_helpers.RenderProcesses``, the application as JSON): the CPU the helper spends per
rendition (rendition + unpacking the request + packing the PDF) and the CPU this process (the hub's side:
JSON, pool, pipes, threads) spends per rendition, both from /proc.

    .venv/bin/python -m bench.render [--count 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from pypdf import PdfReader

from bench.e2e import BIRTH_DAYS, FAMILY, GIVEN, MAPPING, PLACES
from bench.figures import Figure, add_json_option, write
from bench.intake import process_cpu_seconds
from hub.mapping import load_mapping
from hub.models import Address, Application, Attachment, Identity, Party, TrustLevel

TARGET_MS = 10.0
# A base letter with combining marks that has no precomposed form (DIN 91379 allows it).
COMBINING = "S\u0327\u030c"


def application(i: int) -> Application:
    """The i-th application as the hub holds it after a FormCycle intake like bench/e2e.py sends."""
    postal_code, city = PLACES[i % len(PLACES)]
    birth = (date(1940, 1, 1) + timedelta(days=i % BIRTH_DAYS)).isoformat()
    given, family = GIVEN[i % len(GIVEN)], FAMILY[i % len(FAMILY)]
    if i % 5 == 0:
        family = f"{COMBINING}{family}"
    street = f"Kaiserstraße {1 + i % 150}"
    vorgang_id = f"bench-{i:07d}"
    attachments = []
    for element in ("ausweis", "nachweis"):
        sha = f"{i:08x}{element.encode().hex()}".ljust(64, "0")[:64]
        attachments.append(
            Attachment(
                name=f"{element}_{i}.pdf",
                media_type="application/pdf",
                size=16384,
                sha256=sha,
                blob=f"sha256:{sha}",
                field=element,
            )
        )
    return Application(
        id=f"app_{i:032x}",
        source="formcycle",
        external_id=vorgang_id,
        service="jagdschein",
        received_at=datetime(2026, 3, 12, 13, 37, 5, tzinfo=UTC) + timedelta(seconds=i),
        file_number=f"32.3-2026-{i % 100000:05d}",
        applicant=Party(
            given_name=given,
            family_name=family,
            birth_date=birth,
            address=Address(street=street, postal_code=postal_code, city=city),
            email=f"antrag{i}@example.org",
        ),
        identity=Identity(
            verified=True, provider="bundid", asserted_by="idp", level=TrustLevel.SUBSTANTIELL, means="eID"
        ),
        form={
            "vorgang_id": vorgang_id,
            "vorname": given,
            "nachname": family,
            "geburtsdatum": birth,
            "strasse": street,
            "plz": postal_code,
            "ort": city,
            "email": f"antrag{i}@example.org",
            "jagdschein_art": "Jahresjagdschein" if i % 3 else "Dreijahresjagdschein",
            "versicherung": ["Jagdhaftpflicht", "Unfallversicherung"],
            "einwilligung": "ja",
        },
        attachments=attachments,
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def hop(
    apps: Sequence[Application], titles: Sequence[str | None], labels: dict[str, str]
) -> tuple[float, float]:
    """(helper, hub side) CPU ms per rendition through a render helper process, after a warm-up."""
    warm = min(20, len(apps) // 2)
    times: dict[str, float] = {}

    async def run() -> None:
        from hub.render_helpers import RenderProcesses

        helpers = RenderProcesses(1)
        try:
            # As hub.pipeline does it: the application as JSON, labels and title as they are.
            for app, title in zip(apps[:warm], titles[:warm], strict=True):
                await helpers.render(app.model_dump_json(), labels, title)  # starts the helper, loads fonts
            (helper,) = helpers.pids()
            helper_before, hub_before = process_cpu_seconds(helper), time.process_time()
            for app, title in zip(apps[warm:], titles[warm:], strict=True):
                await helpers.render(app.model_dump_json(), labels, title)
            times["helper"] = process_cpu_seconds(helper) - helper_before
            times["hub"] = time.process_time() - hub_before
        finally:
            await helpers.close()

    asyncio.run(run())
    count = len(apps) - warm
    return times["helper"] * 1000 / count, times["hub"] * 1000 / count


def main(argv: Sequence[str] | None = None) -> int:
    """Render, measure, print; write the figures with --json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="applications rendered after the first")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")

    mapping = load_mapping(MAPPING)
    labels = dict(mapping.spec.labels)
    apps = [application(i) for i in range(args.count + 1)]
    titles = [mapping.title(app, app.file_number) for app in apps]

    started = time.process_time()
    from hub.render import render_application  # the import is part of a render process' first rendition

    first = render_application(apps[0], labels, titles[0])
    first_ms = (time.process_time() - started) * 1000

    cpu_ms: list[float] = []
    sizes: list[int] = []
    for app, title in zip(apps[1:], titles[1:], strict=True):
        before = time.process_time()
        pdf = render_application(app, labels, title)
        cpu_ms.append((time.process_time() - before) * 1000)
        sizes.append(len(pdf))
    pages = len(PdfReader(io.BytesIO(first)).pages)

    helper_ms, hub_ms = hop(apps, titles, labels)

    mean, p95 = statistics.fmean(cpu_ms), percentile(cpu_ms, 0.95)
    size_kb = statistics.fmean(sizes) / 1000
    print(f"PDF rendition of {args.count} applications (jagd-und-fischerei mapping, 2 attachments listed)")
    print(f"  first rendition incl. import and fonts: {first_ms:8.1f} ms CPU")
    print(f"  CPU per application, mean:              {mean:8.2f} ms   (target <= {TARGET_MS:g} ms)")
    print(f"  CPU per application, p95:               {p95:8.2f} ms")
    print(f"  output size, mean:                      {size_kb:8.1f} kB   ({pages} page(s) each)")
    print(f"  through a render process, helper CPU:   {helper_ms:8.2f} ms per rendition")
    print(f"  through a render process, hub's CPU:    {hub_ms:8.2f} ms per rendition")
    if args.json:
        note = "process CPU time, in-process; machine shared"
        write(
            args.json,
            [
                Figure(
                    "render: CPU per application (mean)",
                    mean,
                    "ms",
                    target=TARGET_MS,
                    better="lower",
                    note=note,
                ),
                Figure(
                    "render: CPU per application (p95)",
                    p95,
                    "ms",
                    target=TARGET_MS,
                    better="lower",
                    note=note,
                ),
                Figure(
                    "render: first rendition incl. fonts",
                    first_ms,
                    "ms",
                    target=None,
                    better="lower",
                    note=note,
                ),
                Figure("render: PDF size", size_kb, "kB", target=None, better="lower"),
                Figure(
                    "render: helper process CPU per rendition",
                    helper_ms,
                    "ms",
                    target=None,
                    better="lower",
                    note="/proc of the helper; machine shared",
                ),
                Figure(
                    "render: hub's CPU per rendition in a helper",
                    hub_ms,
                    "ms",
                    target=None,
                    better="lower",
                    note="JSON and pipes; machine shared",
                ),
            ],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
