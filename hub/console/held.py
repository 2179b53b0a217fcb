"""The console's page "Zurückgehaltene Nachrichten" (/ui/held): inbound messages a source could not take.

Lists the held messages (`hub.held`) with filters by state and source. Without a state in the address
the page shows the quarantined ones: they wait for a person's decision, while retrying ones settle by
themselves and the others are history (the filter's "alle" shows every state). Operators keep a
message (the hub stops looking at it, it stays upstream); admins close it upstream for good through its
source connector, which may fail: then nothing changed and the page says so. Viewers see no sender and
the reason's code only (`hub.redaction.held_view`, as in the admin API).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.actions import MAX_REASON
from hub.console.forms import MAX_FIELD, problem
from hub.console.guard import guarded, person_of, sees_personal_data
from hub.console.labels import HELD_STATES
from hub.console.notice import render_page, see_other
from hub.held import Decision, HeldFilter, HeldMessage, HeldState
from hub.operations import Invalid, NotFound, Refused, UpstreamFailed
from hub.redaction import held_view

if TYPE_CHECKING:
    from hub.runtime import Hub

PAGE_SIZE = 50
MAX_PAGE = 100_000
DEFAULT_STATE = HeldState.QUARANTINED
# What a decision leaves as notice.
DECIDED = {
    HeldState.CLOSED: "Nachricht {message_id} ({source}) ist geschlossen: "
    "sie wurde im Postfach der Quelle entfernt.",
    HeldState.REJECTED: "Nachricht {message_id} ({source}) war bereits abgelehnt "
    "und im Postfach geschlossen.",
    HeldState.KEPT: "Nachricht {message_id} ({source}) wird behalten: "
    "sie bleibt im Postfach der Quelle, der Hub ruft sie nicht mehr ab.",
}
FIELDS = {"state": "Status", "source": "Quelle", "page": "Seite"}


class HeldForm(BaseModel):
    """The page's filter (query string, or the hidden fields of a decision's form)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    # Absent: the default (what needs a decision); blank: every state.
    state: HeldState | None = DEFAULT_STATE
    source: str | None = Field(None, max_length=MAX_FIELD)
    page: int = Field(1, ge=1, le=MAX_PAGE)

    @field_validator("state", "source", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def where(self) -> HeldFilter:
        """The journal's filter."""
        return HeldFilter(state=self.state, source=self.source)

    def query(self, page: int | None = None) -> str:
        """This filter's address on the page (`page`: another page of it)."""
        params = {"state": self.state.value if self.state else "", "source": self.source or ""}
        params = {k: v for k, v in params.items() if v or k == "state"}
        if (page or self.page) > 1:
            params["page"] = str(page or self.page)
        return "/ui/held?" + urlencode(params)


def read_filter(params: Mapping[str, Any]) -> HeldForm | str:
    """The filter of a query string or form, or what is wrong with it in German."""
    try:
        return HeldForm.model_validate({k: v for k, v in params.items() if k in FIELDS})
    except ValidationError as exc:
        hints = {"state": "diesen Status gibt es nicht.", "page": f"bitte eine Zahl von 1 bis {MAX_PAGE}."}
        return problem(exc.errors()[0], FIELDS, hints)


def refusal_text(held: HeldMessage | None, decision: Decision) -> str:
    """Why a decision does not apply, in German."""
    if held is not None and held.state in (HeldState.CLOSED, HeldState.REJECTED):
        return (
            f"Nachricht {held.message_id} ist bereits {HELD_STATES[held.state].lower()}: "
            "sie liegt nicht mehr im Postfach der Quelle. Nichts wurde geändert."
        )
    source = held.source if held is not None else "der Nachricht"
    return (
        f"Die Quelle {source} ist nicht eingerichtet: die Nachricht kann dort nicht "
        f"{'geschlossen' if decision == 'close' else 'behalten'} werden. Nichts wurde geändert."
    )


def upstream_text(held: HeldMessage, exc: UpstreamFailed) -> str:
    """A failed close upstream, in German, with the operations layer's text (only admins close)."""
    where = f"im Postfach der Quelle {held.source}"
    later = (
        "Die Quelle ist gerade nicht erreichbar; bitte später erneut versuchen."
        if exc.retryable
        else "Die Quelle lehnt das Schließen ab; bitte die Konnektoren-Seite prüfen."
    )
    return f"Die Nachricht konnte {where} nicht geschlossen werden; nichts wurde geändert. {later} ({exc})"


def missing(raw_id: str) -> str:
    """An unknown held message, in German."""
    return f"Keine zurückgehaltene Nachricht {raw_id[:40]} gefunden. Nichts wurde geändert."


def add_routes(app: web.Application, hub: Hub) -> None:
    """Mount the page and its two decisions."""

    async def page(
        request: web.Request, found: HeldForm | str, problem_text: str | None = None, status: int = 200
    ) -> web.Response:
        asked = found if isinstance(found, HeldForm) else HeldForm(state=None)
        offset = (asked.page - 1) * PAGE_SIZE
        rows = await hub.operations.held_messages(asked.where(), limit=PAGE_SIZE + 1, offset=offset)
        personal = sees_personal_data(person_of(request))
        return render_page(
            request,
            "held.html",
            status=status if isinstance(found, HeldForm) else 400,
            filter=asked,
            problem=problem_text if isinstance(found, HeldForm) else found,
            rows=[held_view(h, personal) for h in rows[:PAGE_SIZE]],
            sources=sorted(hub.sources()),
            states=HELD_STATES,
            previous=asked.query(asked.page - 1) if asked.page > 1 else None,
            next=asked.query(asked.page + 1) if len(rows) > PAGE_SIZE else None,
        )

    @guarded("viewer")
    async def held_page(request: web.Request) -> web.Response:
        return await page(request, read_filter(request.query))

    async def decide(request: web.Request, decision: Decision) -> web.StreamResponse:
        raw = request.match_info["id"]
        held_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
        held = await hub.operations.held_message(held_id) if held_id is not None else None
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        found = read_filter(form)
        back = found if isinstance(found, HeldForm) else HeldForm()
        if held_id is None or held is None:
            return await page(request, back, missing(raw), 404)
        try:
            done = await hub.operations.decide_held(
                held_id, decision, person_of(request).name, form.get("reason")
            )
        except NotFound:
            return await page(request, back, missing(raw), 404)
        except Invalid:
            text = f"Die Begründung darf höchstens {MAX_REASON} Zeichen haben. Nichts wurde geändert."
            return await page(request, back, text, 422)
        except Refused:
            return await page(
                request, back, refusal_text(await hub.operations.held_message(held_id), decision), 409
            )
        except UpstreamFailed as exc:
            return await page(request, back, upstream_text(held, exc), 502)
        notice = DECIDED[done.state].format(message_id=done.message_id, source=done.source)
        raise see_other(request, back.query(), notice)

    @guarded("operator")
    async def keep(request: web.Request) -> web.StreamResponse:
        return await decide(request, "keep")

    @guarded("admin")
    async def close(request: web.Request) -> web.StreamResponse:
        return await decide(request, "close")

    app.router.add_get("/ui/held", held_page)
    app.router.add_post("/ui/held/{id}/keep", keep)
    app.router.add_post("/ui/held/{id}/close", close)
