"""The `aktenhub` command."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import getpass
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import yaml
from aiohttp import web
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from hub.actions import Action
from hub.certificates import CertificateReport
from hub.config import Configuration, load_config
from hub.diagnostics import ConnectorDiagnostics
from hub.errors import ConfigError, Permanent, PluginError
from hub.held import Decision, HeldFilter, HeldState
from hub.journal import ApplicationFilter, JournalInUse, JournalUnavailable, migrate_schema
from hub.journal.transfer import TransferRefused
from hub.leases import LeaseGrant
from hub.logs import batch_loop_lines, lean_records, setup_logging
from hub.models import ApplicationState
from hub.operations import (
    BulkPreview,
    ConnectorCheck,
    Invalid,
    JournalAccess,
    NotFound,
    Operations,
    Refused,
    UpstreamFailed,
    operating,
    required_reason,
)
from hub.plugins import Plugins, load_plugins
from hub.storemove import MoveFailed, move_installation

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
console = Console()
err = Console(stderr=True)

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="configuration file (YAML)",
)


def _uvloop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    # uvloop makes the server's socket handling markedly cheaper; the stdlib loop serves where it is missing.
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _run(coro: Coroutine[Any, Any, T]) -> T:
    new_loop = _uvloop()
    if new_loop is None:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(coro)


def _fail(line: str) -> NoReturn:
    """One line on stderr, exit status 1: for failures at start an operator fixes outside the hub."""
    err.print(line, markup=False, highlight=False, soft_wrap=True)
    sys.exit(1)


def _load(config_path: Path) -> tuple[Plugins, Configuration]:
    try:
        plugins = load_plugins()
        return plugins, load_config(config_path, plugins)
    except ConfigError as exc:
        err.print(f"[bold red]configuration invalid[/] ({len(exc.problems)} problem(s)):")
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except PluginError as exc:
        err.print(f"[bold red]plugin error:[/] {exc}")
        sys.exit(2)


@click.group()
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.version_option(package_name="aktenhub")
def main(log_level: str, log_format: str) -> None:
    """Aktenhub: online applications into the e-file and the Fachverfahren, durably."""
    setup_logging(log_level, log_format)
    _follow_columns()


def _follow_columns() -> None:
    # Rich fixes a console's width from $COLUMNS when the console is made, at import; a caller that sets
    # COLUMNS for one invocation (a wrapper script, a test runner whose workers inherit COLUMNS=80) must
    # still get its width.
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        console.width = err.width = int(columns)


@main.command()
@CONFIG_OPTION
def run(config_path: Path) -> None:
    """Run the hub: HTTP server, workers and pollers, until SIGTERM or Ctrl-C."""
    plugins, config = _load(config_path)
    try:
        _run(serve(config, plugins))
    except JournalInUse as exc:
        # Refused before anything was touched: the running hub's leases and port stay its own.
        err.print(f"cannot start: {exc}", style="bold red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


async def serve(
    config: Configuration, plugins: Plugins, ready: Callable[[str], Awaitable[None]] | None = None
) -> None:
    """Start the hub and its HTTP server; stop cleanly on SIGTERM/SIGINT."""
    from hub.http import make_runner
    from hub.journal import JournalUnavailable
    from hub.runtime import Hub

    try:
        hub = Hub(config, plugins)
        await hub.start()
    except JournalUnavailable as exc:
        _fail(f"error: {exc}")
    except OSError as exc:  # e.g. the blob store's directory cannot be created
        _fail(f"error: {exc.filename or 'storage'}: {exc.strerror or exc}")
    except Permanent as exc:  # a connector that cannot start as configured (e.g. its schemas missing)
        _fail(f"error: {exc}")
    runner = make_runner(hub)
    await runner.setup()
    server = config.hub.server
    site = web.TCPSite(runner, server.host, server.port, backlog=1024, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await hub.stop()
        err.print(f"[bold red]cannot listen on {server.listen}:[/] {exc.strerror}")
        sys.exit(1)
    url = f"http://{server.listen}"
    # What the process holds from here on for good (modules, schemas, plugins, configuration: some
    # 200 000 objects) is set aside from the garbage collector, whose full collections otherwise walk
    # all of it again every few hundred submissions: about 15 % of the event loop's CPU per intake.
    gc.collect()
    gc.freeze()
    # The youngest generation is collected every 10 000 allocations instead of 700: a submission
    # allocates a few thousand objects, and with 64 in flight each collection mostly walks (and
    # promotes) live requests' objects, not garbage. Cyclic garbage waits a moment longer.
    gc.set_threshold(10_000, 10, 10)
    lean_records()
    batch_loop_lines(asyncio.get_running_loop())
    import logging

    logging.getLogger("hub").info("aktenhub listening url=%s", url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if ready is not None:
            await ready(url)
        await stop.wait()
    finally:
        await runner.cleanup()
        await hub.stop()


@main.command()
@CONFIG_OPTION
def migrate(config_path: Path) -> None:
    """Bring the journal's schema up to date (PostgreSQL: before the first and after each upgrade).

    Safe to run while hubs run and from several places at once: each migration is applied once, in a
    transaction of its own. Hubs on PostgreSQL refuse a schema that is not theirs until this has run.
    """
    _, config = _load(config_path)
    try:
        done = _run(migrate_schema(config.hub.store))
    except (JournalUnavailable, JournalInUse) as exc:
        _fail(f"cannot migrate: {exc}")

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    if done.applied is None:
        say(f"journal {done.location}: at schema {done.version} (SQLite journals migrate when opened)")
        return
    for name in done.applied:
        say(f"applied {name}")
    if done.applied:
        say(f"journal {done.location}: now at schema {done.version}")
    else:
        say(f"journal {done.location}: schema {done.version} is up to date, nothing to do")


@main.command()
@CONFIG_OPTION
@click.option("--timeout", default=15.0, show_default=True, help="seconds per connector check")
def check(config_path: Path, timeout: float) -> None:
    """Validate the configuration, check every connector can reach its system, list the certificates.

    Exit status 1 if a connector failed, a certificate has expired or cannot be read; a certificate
    that expires within `certificates.warn_days` is a warning.
    """
    loaded = _load(config_path)
    console.print(f"[green]configuration valid[/]: {config_path}")

    async def checked(ops: Operations) -> tuple[list[ConnectorCheck], CertificateReport]:
        return await ops.check(timeout), ops.certificates()

    results, certificates = _operate(loaded, checked, journal="none")
    table = Table("connector", "type", "result", "message")
    for r in results:
        table.add_row(r.name, r.kind, "[green]ok[/]" if r.ok else "[red]FAILED[/]", r.message)
    console.print(table)
    _print_certificates(certificates)
    sys.exit(0 if all(r.ok for r in results) and not certificates.has_errors() else 1)


_CERTIFICATE_STATES = {"ok": "[green]ok[/]", "expiring": "[yellow]WARNING[/]", "expired": "[red]EXPIRED[/]"}


def _print_certificates(report: CertificateReport) -> None:
    table = Table(
        "connector",
        "purpose",
        "subject",
        "expires",
        "days left",
        "state",
        title=f"certificates (warning from {report.warn_days} days before expiry)",
    )
    for c in report.certificates:
        expires = f"{c.not_after:%Y-%m-%d %H:%M} UTC"
        days = str(c.days_left)
        table.add_row(c.connector, c.purpose, escape(c.subject), expires, days, _CERTIFICATE_STATES[c.state])
    console.print(table)
    for problem in report.problems:
        console.print(f"[red]certificate unreadable:[/] {escape(problem)}", highlight=False)


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--timeout", default=10.0, show_default=True, help="seconds per connector")
def diagnostics(config_path: Path, as_json: bool, timeout: float) -> None:
    """Show every connector's state (redacted: no secrets, no personal data)."""

    async def diagnosed(
        ops: Operations,
    ) -> tuple[list[ConnectorDiagnostics], CertificateReport, list[LeaseGrant]]:
        return await ops.diagnostics(timeout), ops.certificates(), await ops.leases()

    loaded = _load(config_path)
    found, certificates, leases = _operate(loaded, diagnosed, journal="none")
    if as_json:
        click.echo(json.dumps([d.model_dump(mode="json") for d in found], indent=2, ensure_ascii=False))
        return
    roles = ", ".join(loaded[1].hub.roles) or "none: admin API, console and /metrics only"
    console.print(f"process roles: {roles} (intake.enabled, workers.enabled)", highlight=False)
    console.print(f"certificates: {certificates.summary()} (aktenhub check lists them)", highlight=False)
    _print_leases(leases)
    for d in found:
        console.print(f"[bold]{d.name}[/] ({d.kind}, {d.role})", highlight=False)
        if d.gate is not None:
            console.print(f"  target: {d.gate.summary()}", markup=False, highlight=False)
        if d.error is not None:
            console.print(f"  [red]{d.error}[/]", markup=True, highlight=False)
            continue
        text = yaml.safe_dump(d.state, allow_unicode=True, sort_keys=False).rstrip("\n")
        for line in text.splitlines():
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def _print_leases(leases: list[LeaseGrant]) -> None:
    now = datetime.now(UTC)
    for lease in leases:
        state = "expires" if lease.expires_at > now else "expired (free to take)"
        console.print(
            f"singleton job {lease.name}: {lease.holder} since {lease.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"{state} {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC, token {lease.token}",
            markup=False,
            emoji=False,  # "poll:mailbox:" is no emoji
            highlight=False,
            soft_wrap=True,
        )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins(as_json: bool) -> None:
    """List installed plugins with version, connector kinds and standards spoken."""
    try:
        loaded = load_plugins()
    except PluginError as exc:
        err.print(f"[bold red]plugin error:[/] {exc}")
        sys.exit(2)
    infos = loaded.info()
    if as_json:
        click.echo(json.dumps([i.__dict__ for i in infos], indent=2))
        return
    table = Table("plugin", "distribution", "version", "kinds", "standards")
    for i in infos:
        table.add_row(
            i.name,
            i.distribution or "-",
            i.version or "-",
            ", ".join(i.kinds) or "-",
            ", ".join(i.standards) or "-",
        )
    console.print(table)


@main.command()
@CONFIG_OPTION
@click.option("--state", type=click.Choice([s.value for s in ApplicationState]))
@click.option("--route")
@click.option("--service")
@click.option("-q", "--query", "q", help="free text: id, external id, file number, name")
@click.option(
    "--find",
    help="any id a system gave it: application id, external id, Aktenzeichen, e-file or Fachverfahren "
    "ids, message ids",
)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def applications(
    config_path: Path,
    state: str | None,
    route: str | None,
    service: str | None,
    q: str | None,
    find: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List applications, newest first."""
    where = ApplicationFilter(
        state=ApplicationState(state) if state else None, route=route, service=service, q=q, find=find
    )
    # Only reads: works beside a running hub, which owns the journal.
    rows = _operate(config_path, lambda ops: ops.applications(where, limit=limit), journal="read")
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table("id", "received", "service", "route", "state", "file number", "error")
    for r in rows:
        style = {"dead": "red", "rejected": "yellow", "completed": "green", "abandoned": "dim"}.get(
            r.state, ""
        )
        table.add_row(
            r.id,
            r.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.service,
            r.route or "",
            f"[{style}]{r.state}[/]" if style else r.state,
            r.file_number or "",
            (r.error or "")[:60],
        )
    console.print(table)
    console.print(f"{len(rows)} application(s)")


@main.command()
@CONFIG_OPTION
@click.argument("application_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def show(config_path: Path, application_id: str, as_json: bool) -> None:
    """One application: its ids across systems, its timeline and its tasks with attempts and errors."""
    view = _operate(config_path, lambda ops: ops.show(application_id), journal="read")
    if as_json:
        document = view.application.model_dump(mode="json") if view.application else None
        body = {
            **view.summary.model_dump(mode="json"),
            "timeline": [e.model_dump(mode="json") for e in view.timeline],
            "tasks": [dataclasses.asdict(t) for t in view.tasks],
            "application": document,
        }
        click.echo(json.dumps(body, indent=2, ensure_ascii=False, default=str))
        return
    s = view.summary
    console.print(
        f"{s.id} {s.state} ({s.service}, route {s.route or '-'}, Az. {s.file_number or '-'})", markup=False
    )
    for key, value in sorted((view.application.correlations if view.application else {}).items()):
        console.print(f"  {key}: {value}", markup=False, highlight=False)
    timeline = Table("at", "event", "step", "target", "details")
    for e in view.timeline:
        details = ", ".join(f"{k}={v}" for k, v in e.data.items() if v is not None)
        timeline.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"), e.type, e.step or "", e.target or "", details[:80]
        )
    console.print(timeline)
    tasks = Table("step", "target", "state", "attempts", "error")
    for t in view.tasks:
        tasks.add_row(t.step, t.target, t.state, str(t.attempts), (t.last_error or "")[:80])
    console.print(tasks)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a container's arbitrary user)
        return f"uid:{os.getuid()}"


OPERATOR_OPTION = click.option(
    "--operator",
    default=_os_user,
    show_default="the OS user",
    help="who acts, recorded on each application's timeline and in the audit trail",
)


def _operate(
    config: Path | tuple[Plugins, Configuration],
    action: Callable[[Operations], Awaitable[T]],
    journal: JournalAccess = "write",
) -> T:
    """Run one operation (`hub.operations`) and turn its refusals into a message and an exit status.

    `config`: the configuration file, or the plugins and configuration loaded from it already.
    Beside a running hub, a writing operation opens the journal as a guest; the hub notices it within
    its idle poll (see `hub.operations`).
    """
    plugins, loaded = _load(config) if isinstance(config, Path) else config

    async def go() -> T:
        async with operating(loaded, plugins, journal) as ops:
            return await action(ops)

    try:
        return _run(go())
    except Invalid as exc:
        raise click.UsageError(str(exc)) from None
    except (NotFound, Refused, UpstreamFailed, FileNotFoundError, JournalUnavailable) as exc:
        _fail(str(exc))


def DEAD_SELECTION(command: F) -> F:
    """The options by which `replay` and `abandon` select every dead application of a kind."""
    for option in reversed(
        (
            click.option("--all-dead", is_flag=True, help="every dead application (with the options below)"),
            click.option("--route", help="with --all-dead: only this route"),
            click.option("--service", help="with --all-dead: only this service"),
            click.option("--target", help="with --all-dead: only the dead steps of this target"),
            click.option("--error-code", help="with --all-dead: only dead steps that failed with this code"),
            click.option("--dry-run", is_flag=True, help="with --all-dead: only say how many it affects"),
            click.option("--yes", is_flag=True, help="with --all-dead: do not ask for confirmation"),
        )
    ):
        command = option(command)
    return command


@main.command()
@CONFIG_OPTION
@click.argument("ids", nargs=-1)
@DEAD_SELECTION
@click.option("--reason", help="why (required with --all-dead; kept in the audit trail)")
@OPERATOR_OPTION
def replay(
    config_path: Path,
    ids: tuple[str, ...],
    all_dead: bool,
    route: str | None,
    service: str | None,
    target: str | None,
    error_code: str | None,
    reason: str | None,
    dry_run: bool,
    yes: bool,
    operator: str,
) -> None:
    """Replay dead steps (after a fix): of the given applications, or of all dead ones."""
    if bool(ids) == all_dead:
        raise click.UsageError("give application ids or --all-dead (not both)")
    if all_dead:
        where = _dead_selection(route, service, target, error_code)
        _bulk(config_path, where, reason, dry_run, yes, operator, "replay")
        return

    async def one_by_one(ops: Operations) -> list[str]:
        done, missing = [], []
        with Progress(console=err, transient=True, disable=len(ids) < 20) as progress:
            bar = progress.add_task("replaying", total=len(ids))
            for app_id in ids:
                try:
                    done += await ops.replay(app_id, operator, reason)
                except (NotFound, Refused) as exc:
                    missing.append(str(exc))
                progress.update(bar, advance=1)
        for line in missing:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        return done

    done = _operate(config_path, one_by_one)
    console.print(f"replayed {len(done)} application(s); a running hub picks them up within seconds")
    if len(done) < len(ids):
        err.print(f"{len(ids) - len(done)} of the given application(s) had no dead step")
        sys.exit(1)


def _dead_selection(
    route: str | None, service: str | None, target: str | None, error_code: str | None
) -> ApplicationFilter:
    return ApplicationFilter(
        state=ApplicationState.DEAD, route=route, service=service, target=target, error_code=error_code
    )


def _bulk(
    config_path: Path,
    where: ApplicationFilter,
    reason: str | None,
    dry_run: bool,
    yes: bool,
    operator: str,
    verb: str,
) -> None:
    """Replay or abandon every dead application `where` selects: count, confirm, act."""
    if not dry_run:
        try:
            required_reason(reason, "--all-dead")  # refused before anything is read
        except Invalid as exc:
            raise click.UsageError(str(exc)) from None

    def counted(ops: Operations) -> Awaitable[BulkPreview]:
        return ops.replay_preview(where) if verb == "replay" else ops.abandon_preview(where)

    preview = _operate(config_path, counted, journal="read")
    console.print(f"this affects {preview.count} application(s) ({preview.filter})", markup=False)
    if dry_run or preview.count == 0:
        return
    if not yes:
        click.confirm(f"{verb} them?", abort=True, err=True)

    async def bulk(ops: Operations) -> list[str]:
        if verb == "abandon":
            return await ops.abandon_bulk(where, operator, reason)
        with Progress(console=err, transient=True) as progress:
            bar = progress.add_task("replaying", total=preview.count)
            return await ops.replay_bulk(
                where, operator, reason, lambda done, total: progress.update(bar, completed=done, total=total)
            )

    done = _operate(config_path, bulk)
    if verb == "abandon":
        console.print(f"abandoned {len(done)} application(s)")
    else:
        console.print(f"replayed {len(done)} application(s); a running hub picks them up within seconds")


@main.command()
@CONFIG_OPTION
@click.argument("application_id", required=False)
@DEAD_SELECTION
@click.option(
    "--reason", help="why (kept on the timeline and in the audit trail; required but for --dry-run)"
)
@OPERATOR_OPTION
def abandon(
    config_path: Path,
    application_id: str | None,
    all_dead: bool,
    route: str | None,
    service: str | None,
    target: str | None,
    error_code: str | None,
    reason: str | None,
    dry_run: bool,
    yes: bool,
    operator: str,
) -> None:
    """Abandon an application, or every dead one (--all-dead): its steps never run; it stays listed."""
    if (application_id is None) != all_dead:
        raise click.UsageError("give an application id or --all-dead (not both)")
    if all_dead:
        _bulk(
            config_path,
            _dead_selection(route, service, target, error_code),
            reason,
            dry_run,
            yes,
            operator,
            "abandon",
        )
        return
    if application_id is None or not reason:
        raise click.UsageError("abandoning an application needs --reason (kept on its timeline)")
    app_id = application_id
    outcome = _operate(config_path, lambda ops: ops.abandon(app_id, operator, reason))
    if outcome.already:
        console.print(f"{application_id} was abandoned already", markup=False)
    else:
        console.print(f"abandoned {application_id}; {outcome.tasks} open step(s) ended", markup=False)


@main.command()
@CONFIG_OPTION
@click.option("--dry-run", is_flag=True, help="only count what is due (read-only, beside a running hub too)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@OPERATOR_OPTION
def purge(config_path: Path, dry_run: bool, as_json: bool, operator: str) -> None:
    """Delete the payload of finished applications whose retention period is over (`retention:`)."""
    with Progress(console=err, transient=True) as progress:
        bar = progress.add_task("checking" if dry_run else "purging", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        report = _operate(
            config_path,
            lambda ops: ops.purge(operator, dry_run=dry_run, progress=advance),
            journal="read" if dry_run else "write",
        )
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    verb = "due" if dry_run else "purged"
    policies = ", ".join(f"{name}: {n}" for name, n in sorted(report.by_policy.items()))
    console.print(f"{report.applications} application(s) {verb}" + (f" ({policies})" if policies else ""))
    console.print(
        f"{report.blobs} file(s), {report.bytes} bytes {'to delete' if dry_run else 'deleted'}"
        + ("" if dry_run else f"; {report.blobs_shared} kept (still referenced)")
        + ("" if dry_run or not report.blobs_later else f", {report.blobs_later} left to the orphan sweep"),
        highlight=False,
    )


@main.command("migrate-store")
@CONFIG_OPTION
@click.option(
    "--to",
    "target_path",
    type=click.Path(path_type=Path),
    required=True,
    help="the configuration naming the new journal (store) and file store (blobs)",
)
def migrate_store(config_path: Path, target_path: Path) -> None:
    """Move the journal and files of CONFIG's stores into those of the --to configuration.

    Stop the hub first (its journal is locked while it runs) and run `aktenhub migrate -c` on the new
    configuration. Nothing of the old stores is changed: going back is starting with the old configuration.
    """
    _, source = _load(config_path)
    _, target = _load(target_path)

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    try:
        moved = _run(move_installation(source.hub, target.hub, say))
    except JournalInUse as exc:
        _fail(f"cannot move: {exc} (stop the hub first)")
    except (MoveFailed, TransferRefused, JournalUnavailable) as exc:
        _fail(f"cannot move: {exc}")
    say(
        f"moved: {moved.rows.get('applications', 0)} applications, {moved.blobs} files "
        f"({moved.blobs_copied} copied); start the hub with {target_path}"
    )


@main.group()
def targets() -> None:
    """The systems the hub delivers to: state, pause and resume."""


@targets.command("list")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def targets_list(config_path: Path, as_json: bool) -> None:
    """List the targets with their state."""
    found = _operate(config_path, lambda ops: ops.targets(), journal="read")
    if as_json:
        click.echo(json.dumps([t.model_dump(mode="json") for t in found], indent=2, ensure_ascii=False))
        return
    table = Table("target", "state", "since", "by", "reason")
    for t in found:
        p = t.paused
        if p is None:
            table.add_row(t.target, "[green]running[/]", "", "", "")
        else:
            table.add_row(
                t.target, "[yellow]paused[/]", p.since.strftime("%Y-%m-%d %H:%M:%S"), p.operator, p.reason
            )
    console.print(table)


@targets.command("pause")
@CONFIG_OPTION
@click.argument("name")
@click.option("--reason", required=True, help="why (kept in the audit trail)")
@OPERATOR_OPTION
def targets_pause(config_path: Path, name: str, reason: str, operator: str) -> None:
    """Start none of a target's tasks until it is resumed (tasks running now finish)."""
    paused = _operate(config_path, lambda ops: ops.pause(name, operator, reason))
    console.print(
        f"{name} is paused since {paused.since:%Y-%m-%d %H:%M:%S}, by {paused.operator}", markup=False
    )


@targets.command("resume")
@CONFIG_OPTION
@click.argument("name")
@click.option("--reason", help="why (kept in the audit trail)")
@OPERATOR_OPTION
def targets_resume(config_path: Path, name: str, reason: str | None, operator: str) -> None:
    """Let a paused target's tasks start again; its backlog drains."""
    lifted = _operate(config_path, lambda ops: ops.resume(name, operator, reason))
    console.print(f"{name} resumed" if lifted else f"{name} was not paused", markup=False)


@main.command()
@CONFIG_OPTION
@click.option("--action", type=click.Choice([a.value for a in Action]))
@click.option("--by", "by", help="only this operator's actions")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def audit(config_path: Path, action: str | None, by: str | None, limit: int, as_json: bool) -> None:
    """The audit trail: who did what, when, on what and why; newest first."""
    kind = Action(action) if action else None
    rows = _operate(config_path, lambda ops: ops.audit(kind, by, limit), journal="read")
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2, ensure_ascii=False))
        return
    table = Table("at", "operator", "action", "subject", "count", "reason")
    for r in rows:
        at = r.at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(at, r.operator or "-", r.action, r.subject, str(r.count), r.reason or "")
    console.print(table)


@main.group()
def messages() -> None:
    """Inbound messages a source could not take (quarantined, rejected, retrying): list and decide."""


@messages.command("list")
@CONFIG_OPTION
@click.option("--state", type=click.Choice([s.value for s in HeldState]))
@click.option("--source", help="only this source connector")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def messages_list(
    config_path: Path, state: str | None, source: str | None, limit: int, as_json: bool
) -> None:
    """List held messages, most recently changed first."""
    where = HeldFilter(state=HeldState(state) if state else None, source=source)
    rows = _operate(config_path, lambda ops: ops.journal.list_held(where, limit=limit), journal="read")
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table("id", "source", "message id", "sender", "state", "reason", "fetches", "decided by")
    for r in rows:
        table.add_row(
            str(r.id),
            r.source,
            r.message_id,
            r.sender or "",
            r.state,
            f"{r.reason_code}: {r.reason}"[:80],
            str(r.fetches),
            r.decided_by or "",
        )
    console.print(table)
    console.print(f"{len(rows)} held message(s)")


def _decide(config_path: Path, held_id: int, operator: str, decision: Decision, reason: str | None) -> None:
    held = _operate(config_path, lambda ops: ops.decide_held(held_id, decision, operator, reason))
    console.print(f"held message {held.id} ({held.message_id}) is {held.state}, by {held.decided_by}")


REASON_OPTION = click.option("--reason", help="why (kept in the audit trail)")


@messages.command("close")
@CONFIG_OPTION
@click.argument("held_id", type=int)
@REASON_OPTION
@OPERATOR_OPTION
def messages_close(config_path: Path, held_id: int, reason: str | None, operator: str) -> None:
    """Close a held message upstream for good (e.g. remove it from the XTA mailbox)."""
    _decide(config_path, held_id, operator, "close", reason)


@messages.command("keep")
@CONFIG_OPTION
@click.argument("held_id", type=int)
@REASON_OPTION
@OPERATOR_OPTION
def messages_keep(config_path: Path, held_id: int, reason: str | None, operator: str) -> None:
    """Keep a held message upstream; the hub stops looking at it."""
    _decide(config_path, held_id, operator, "keep", reason)


@main.group()
def mapping() -> None:
    """Work with mapping files."""


@mapping.command("test")
@click.argument("mapping_path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("sample_path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the record as JSON instead of YAML")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="configuration whose connectors the payload targets name (default: targets named like a type)",
)
@click.option(
    "--file-number",
    "given_number",
    metavar="AKTENZEICHEN",
    help="render with this Aktenzeichen, as a Fachverfahren assigns it (a route's file_number.assigned_by); "
    "'' renders as the assigning target first gets the record, without one",
)
def mapping_test(
    mapping_path: Path, sample_path: Path, as_json: bool, config_path: Path | None, given_number: str | None
) -> None:
    """Render a sample application (YAML/JSON) through a mapping and print the record.

    Each `payloads.<target>` is checked against the Payload model of the target's connector type: the
    connector of that name in --config, else the connector type of that name.
    The file number sequence starts at 1 (or --file-number gives the number); the PDF rendition is not
    produced (its blob shows as null).
    Exit code 1 with the errors and their place in the mapping file when the mapping fails.
    """
    from hub.mapping import MappingError, MappingLoadError, load_mapping, sample_application

    try:
        plugins = load_plugins()
        compiled = load_mapping(mapping_path, plugins.mapping_filters())
        targets = payload_targets(plugins, list(compiled.spec.payloads), config_path)
        app = sample_application(yaml.safe_load(sample_path.read_text(encoding="utf-8")))
    except MappingLoadError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except (ValueError, yaml.YAMLError, PluginError) as exc:
        err.print(f"{sample_path}: not a valid sample application: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    unchecked = [t for t in compiled.spec.payloads if t not in targets]
    if unchecked:
        err.print(
            f"payloads not checked (no connector of that name; pass --config): {', '.join(unchecked)}",
            markup=False,
            soft_wrap=True,
        )
    problems = compiled.payload_problems(targets, all_targets=False)

    async def first_number(pattern: str, period: str) -> int:
        return 1

    try:
        file_number = given_number
        if file_number is None:
            file_number = asyncio.run(compiled.draw_file_number(app, first_number))
        record = compiled.render(app, file_number, rendition=None)
        if not problems:
            checked = compiled.validate_payloads(record, targets)
            record = checked.model_copy(update={"payloads": {**record.payloads, **checked.payloads}})
    except MappingError as exc:
        problems.append(str(exc))
    if problems:
        for problem in problems:
            err.print(problem, markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    # What the mapping makes; the revision is the application's, not the mapping's.
    data = record.model_dump(mode="json", exclude={"revision"})
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), nl=False)


def payload_targets(
    plugins: Plugins, names: list[str], config_path: Path | None
) -> dict[str, type[BaseModel] | None]:
    """The Payload model of each named target: its connector's in the configuration, else the type's."""
    from hub.connectors import Sink

    kinds = {name: name for name in names}
    if config_path is not None:
        # Only the connectors' types are read: secrets need not be set to test a mapping.
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        connectors = (raw.get("connectors") if isinstance(raw, dict) else None) or {}
        kinds = {n: str(c.get("type")) for n, c in connectors.items() if isinstance(c, dict) and n in names}
    found: dict[str, type[BaseModel] | None] = {}
    for name, kind in kinds.items():
        try:
            cls = plugins.connector_type(kind)
        except PluginError:
            continue
        found[name] = cls.Payload if issubclass(cls, Sink) else None
    return found


@main.command()
@click.argument("system", required=False)
@click.option("--port", default=8090, show_default=True)
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="simulator setting")
def simulate(system: str | None, port: int, options: tuple[str, ...]) -> None:
    """Run the simulator of a remote system on 127.0.0.1 (without SYSTEM: list them)."""
    try:
        sims = load_plugins().simulators()
    except PluginError as exc:
        err.print(f"[bold red]plugin error:[/] {exc}")
        sys.exit(2)
    if system is None:
        table = Table("simulator", "description")
        for name, offered in sorted(sims.items()):
            table.add_row(name, offered.description)
        console.print(table)
        return
    sim = sims.get(system)
    if sim is None:
        raise click.UsageError(f"no simulator {system!r}; installed: {', '.join(sorted(sims)) or 'none'}")
    settings: dict[str, Any] = dict(sim.options)
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise click.UsageError(f"--option expects KEY=VALUE, got {option!r}")
        settings[key] = yaml.safe_load(value)
    from hub.simulation import SERVER_SSL

    app = sim.make_app(**settings)
    tls = app.get(SERVER_SSL)
    console.print(f"{sim.name} simulator on http{'s' if tls else ''}://127.0.0.1:{port} (Ctrl-C stops it)")
    new_loop = _uvloop()  # a simulator shares the machine with the hub under test: serve it cheaply too
    loop = new_loop() if new_loop is not None else None
    web.run_app(app, host="127.0.0.1", port=port, print=None, ssl_context=tls, loop=loop)


@main.command()
@click.option("--once", is_flag=True, help="exit after the summary instead of serving on")
@click.option("--port", default=8080, show_default=True, help="the hub's port (0: any free one)")
@click.option(
    "--simulator-port",
    "--enaio-port",  # its name while the demo had one e-file simulator first
    "simulator_port",
    default=8095,
    show_default=True,
    help="the first simulator's port; the others take the following ones (0: any free ones)",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=Path("data/demo"),
    show_default=True,
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="run only this plugin scenario and those it requires (repeatable; default: all installed)",
)
def demo(once: bool, port: int, simulator_port: int, data_dir: Path, scenarios: tuple[str, ...]) -> None:
    """Applications into the e-file and beyond, with the simulators the installed plugins contribute."""
    from hub.demo import run_demo

    demo_run = run_demo(
        data_dir=data_dir, port=port, once=once, simulator_port=simulator_port, only=scenarios
    )
    sys.exit(_run(demo_run))
