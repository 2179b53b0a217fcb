"""Render processes: the same PDF as in the hub's own process, failures shown, helpers replaced and ended."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from test_render import LABELS, _application

from hub.render import render_application
from hub.render_helpers import RenderError, RenderProcesses

pytestmark = pytest.mark.timeout(120)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


async def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 15
    while _running(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return not _running(pid)


async def test_a_helper_renders_the_same_bytes_as_the_hub_itself() -> None:
    app = _application()
    helpers = RenderProcesses(1)
    try:
        pdf = await helpers.render(app.model_dump_json(), LABELS, "Antrag auf einen Jagdschein")
        again = await helpers.render(app.model_dump_json(), LABELS, "Antrag auf einen Jagdschein")
        assert len(helpers.pids()) == 1  # the second rendition reused the helper
    finally:
        await helpers.close()
    assert pdf == again == render_application(app, LABELS, "Antrag auf einen Jagdschein")


async def test_a_long_application_and_its_pdf_pass_the_pipes_whole() -> None:
    # Far more than a pipe buffer (64 kB) each way: the request and the PDF travel in many pieces.
    form = {f"f{i:04d}": f"Antwort {i} " + "mit Begründung " * (i % 40) for i in range(1500)}
    app = _application(form=form)
    helpers = RenderProcesses(1)
    try:
        pdf = await helpers.render(app.model_dump_json(), LABELS, None)
    finally:
        await helpers.close()
    assert len(app.model_dump_json()) > 200_000 and len(pdf) > 200_000
    assert pdf == render_application(app, LABELS)


async def test_renditions_run_side_by_side_in_at_most_the_configured_helpers() -> None:
    apps = [_application(external_id=f"fc-{n}") for n in range(6)]
    helpers = RenderProcesses(2)
    try:
        pdfs = await asyncio.gather(*(helpers.render(app.model_dump_json(), LABELS, None) for app in apps))
        assert 1 <= len(helpers.pids()) <= 2
    finally:
        await helpers.close()
    assert pdfs == [render_application(app, LABELS) for app in apps]


async def test_a_failed_rendition_is_reported_and_the_helper_goes_on() -> None:
    helpers = RenderProcesses(1)
    try:
        with pytest.raises(RenderError, match="rendition failed: ValidationError") as failed:
            await helpers.render('{"id": "app_broken"}', {}, None)
        assert not failed.value.helper_ended
        (pid,) = helpers.pids()
        pdf = await helpers.render(_application().model_dump_json(), {}, None)
        assert helpers.pids() == [pid] and pdf == render_application(_application())
    finally:
        await helpers.close()


async def test_a_killed_helper_fails_its_rendition_and_a_fresh_one_takes_over() -> None:
    app = _application()
    helpers = RenderProcesses(1)
    try:
        await helpers.render(app.model_dump_json(), LABELS, None)
        (killed,) = helpers.pids()
        os.kill(killed, signal.SIGKILL)
        assert await _gone(killed)
        with pytest.raises(RenderError, match="the render process ended") as failed:
            await helpers.render(app.model_dump_json(), LABELS, None)
        assert failed.value.helper_ended and helpers.pids() == []
        pdf = await helpers.render(app.model_dump_json(), LABELS, None)
        (fresh,) = helpers.pids()
        assert fresh != killed and pdf == render_application(app, LABELS)
    finally:
        await helpers.close()


async def test_close_ends_the_helpers() -> None:
    helpers = RenderProcesses(2)
    await asyncio.gather(*(helpers.render(_application().model_dump_json(), {}, None) for _ in range(2)))
    pids = helpers.pids()
    assert pids
    await helpers.close()
    assert helpers.pids() == []
    for pid in pids:
        assert await _gone(pid)
