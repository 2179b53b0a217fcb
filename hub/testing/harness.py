"""A real hub on a temporary journal, served over loopback, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hub.blobs import PREFIX, Blobs, BlobStore, digest_of
from hub.blobs.local import LAYOUT_MARKER
from hub.blobs.pack import PACK_FILE
from hub.config import config_from_dict
from hub.http import make_runner
from hub.journal import ApplicationFilter
from hub.models import Application, ApplicationState, Attachment, Event, OriginalSubmission
from hub.plugins import load_plugins
from hub.runtime import Hub

FINAL_STATES = (
    ApplicationState.COMPLETED,
    ApplicationState.DEAD,
    ApplicationState.REJECTED,
    ApplicationState.ABANDONED,
)


@dataclass
class RunningHub:
    """A started hub with its HTTP server on 127.0.0.1 and a client session."""

    hub: Hub
    url: str
    http: aiohttp.ClientSession
    runner: web.AppRunner
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    events: list[Event] = field(default_factory=list)

    @property
    def journal(self) -> Any:
        """The hub's journal."""
        return self.hub.journal

    def _on_events(self, events: tuple[Event, ...]) -> None:
        self.events.extend(events)

        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
    ) -> Any:
        """Wait until the awaitable-returning or plain `predicate` is truthy, woken by journal events.

        Also re-checks every half second, because retries fall due by time rather than by an event.
        """

        async def check() -> Any:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            return value

        async def loop() -> Any:
            while True:
                value = await check()
                if value:
                    return value
                async with self._changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.5)

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    async def wait_for_state(
        self,
        application_id: str,
        states: Sequence[ApplicationState] = FINAL_STATES,
        timeout: float = 30.0,
    ) -> ApplicationState:
        """Wait until the application reaches one of `states`; return the state."""

        async def reached() -> ApplicationState | None:
            summary = await self.hub.journal.get_summary(application_id)
            return summary.state if summary and summary.state in states else None

        state: ApplicationState = await self.wait_for(
            reached, timeout, f"application {application_id} to reach {[s.value for s in states]}"
        )
        return state

    async def wait_all_final(self, timeout: float = 60.0) -> None:
        """Wait until no application is received or processing."""

        async def settled() -> bool:
            for state in (ApplicationState.RECEIVED, ApplicationState.PROCESSING):
                if await self.hub.journal.list_applications(ApplicationFilter(state=state), limit=1):
                    return False
            return True

        await self.wait_for(settled, timeout, "all applications to settle")

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        """POST to the hub; (status, JSON body or text)."""
        async with self.http.post(self.url + path, **kwargs) as resp:
            body = await _body(resp)
            return resp.status, body

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        """GET from the hub; (status, JSON body or text)."""
        async with self.http.get(self.url + path, **kwargs) as resp:
            return resp.status, await _body(resp)


async def _body(resp: aiohttp.ClientResponse) -> Any:
    if resp.content_type == "application/json":
        return await resp.json()
    return await resp.text()


async def start_hub(
    settings: dict[str, Any],
    *,
    extra_plugins: Sequence[object] = (),
    env: dict[str, str] | None = None,
    workers: bool = True,
    clock: Callable[[], float] = time.time,
) -> RunningHub:
    """Start a hub from a configuration dict, serving on a free loopback port (with `clock`'s time)."""
    plugins = load_plugins(extra_plugins)
    config = config_from_dict(
        settings, plugins, env=env if env is not None else dict(os.environ), source="<test>"
    )
    hub = Hub(config, plugins, clock=clock)
    await hub.start(workers=workers)
    runner = make_runner(hub)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    running = RunningHub(hub=hub, url=f"http://127.0.0.1:{port}", http=aiohttp.ClientSession(), runner=runner)
    hub.bus.listeners.append(running._on_events)
    return running


async def stop_hub(running: RunningHub) -> None:
    """Stop what `start_hub` started."""
    await running.http.close()
    await running.runner.cleanup()
    await running.hub.stop()


def blob_files(root: Path) -> list[Path]:
    """Every file of a local blob store besides its pack: large blobs and temporary files.

    Not its layout marker nor the pack's database, whose content `stored_blobs` lists: a test that
    nothing is left behind checks both.
    """
    kept_aside = (LAYOUT_MARKER, PACK_FILE, PACK_FILE + "-wal", PACK_FILE + "-shm")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in kept_aside)


def stored_blobs(store: BlobStore) -> set[str]:
    """The reference of every blob a local store holds, packed or in a file of its own."""
    return {PREFIX + digest for digest, _, _ in store.walk()}


def damage_blob(store: BlobStore, ref: str, content: bytes) -> None:
    """Replace a stored blob's content behind the store's back, as a faulty disk would."""
    with contextlib.closing(sqlite3.connect(store.root / PACK_FILE)) as pack, pack:
        packed = pack.execute("UPDATE blobs SET content = ? WHERE digest = ?", (content, digest_of(ref)))
        if packed.rowcount:
            return
    path = store.path(ref)
    if not path.is_file():
        raise FileNotFoundError(f"{ref} is not stored in {store.root}")
    path.write_bytes(content)


def backdate_blobs(store: BlobStore, refs: Iterable[str], seconds: float) -> None:
    """Make stored blobs look written `seconds` ago, as the orphan sweep and the purge see it.

    Small content is a row of the store's pack, whose `written` time stands for a file's; large content
    is a file of its own. A reference stored in neither is an error of the test, not skipped.
    """
    then = time.time() - seconds
    with contextlib.closing(sqlite3.connect(store.root / PACK_FILE)) as pack, pack:
        for ref in refs:
            packed = pack.execute("UPDATE blobs SET written = ? WHERE digest = ?", (then, digest_of(ref)))
            path = store.path(ref)
            if path.is_file():
                os.utime(path, (then, then))
            elif not packed.rowcount:
                raise FileNotFoundError(f"{ref} is not stored in {store.root}")


def lose_blob(store: BlobStore, ref: str) -> None:
    """Remove a stored blob behind the store's back, as an operator's mistake or a faulty disk would."""
    with contextlib.closing(sqlite3.connect(store.root / PACK_FILE)) as pack, pack:
        pack.execute("DELETE FROM blobs WHERE digest = ?", (digest_of(ref),))
    store.path(ref).unlink(missing_ok=True)


def base_settings(tmp: Path, connectors: dict[str, Any], routes: list[dict[str, Any]]) -> dict[str, Any]:
    """A configuration dict with journal and blobs under `tmp` and fast worker polling."""
    return {
        "store": f"sqlite:///{tmp / 'journal.db'}",
        "blobs": str(tmp / "blobs"),
        "server": {"listen": "127.0.0.1:0"},
        "workers": {"concurrency": 8, "lease_seconds": 30, "idle_poll_seconds": 0.2},
        "connectors": connectors,
        "routes": routes,
    }


async def make_application(
    blobs: Blobs,
    *,
    source: str = "test",
    service: str = "jagdschein",
    external_id: str | None = None,
    files: dict[str, bytes] | None = None,
    form: dict[str, Any] | None = None,
) -> Application:
    """An application whose attachments and original submission are really in `blobs`."""
    files = (
        {"personalausweis.pdf": b"%PDF-1.4 test\n", "foto.jpg": b"\xff\xd8\xff test"}
        if files is None
        else files
    )
    form = {"vorname": "Jürgen", "nachname": "Groß", "ort": "Siegburg"} if form is None else form
    attachments = []
    for name, data in files.items():
        info = await blobs.write_bytes(data)
        media = "application/pdf" if name.endswith(".pdf") else "image/jpeg"
        attachments.append(
            Attachment(name=name, media_type=media, size=info.size, sha256=info.sha256, blob=info.ref)
        )
    original_bytes = repr(sorted(form.items())).encode()
    original = await blobs.write_bytes(original_bytes)
    return Application(
        source=source,
        external_id=external_id or hashlib.sha256(original_bytes).hexdigest()[:16],
        service=service,
        route="test",
        form=form,
        attachments=attachments,
        original=OriginalSubmission(
            media_type="application/x-www-form-urlencoded",
            blob=original.ref,
            size=original.size,
            sha256=original.sha256,
        ),
    )
