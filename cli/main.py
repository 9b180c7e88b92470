"""`clusterhub`: administration commands over the store that the services share.

Every failure ends as one line `error: <reason>` on stderr and a non-zero exit code (2 for
usage errors, 130 when interrupted, 1 otherwise); `--debug` shows the traceback instead.
"""
from __future__ import annotations

import contextlib
import getpass
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import sqlalchemy.exc
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli import serve as serving
from cli.services import SERVICES, all_projectors, by_name, installed_services
from shared.db import Database
from shared.errors import DomainError
from shared.eventlog import EventLog, Metadata, to_timestamp_text, verify_chain
from shared.migrate import pending, upgrade
from shared.settings import CommonSettings
from shared.subscriptions import rebuild_projections

if TYPE_CHECKING:
    from services.registry.importer import ImportReport

app = typer.Typer(
    name="clusterhub",
    help="Administer a clusterhub store: schema, demo data, import/export, audit, serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Schema migrations.", no_args_is_help=True)
seed_app = typer.Typer(help="Load sample data.", no_args_is_help=True)
import_app = typer.Typer(help="Import records from files.", no_args_is_help=True)
export_app = typer.Typer(help="Export records.", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect and verify the event log.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models fed by the event log.", no_args_is_help=True)
tokens_app = typer.Typer(help="Bearer tokens for the API, signed with CLUSTERHUB_AUTH_SIGNING_KEYS.",
                         no_args_is_help=True)
api_keys_app = typer.Typer(help="API keys of machine clients (traded for tokens at POST /v1/auth/token).",
                           no_args_is_help=True)
for group, name in ((db_app, "db"), (seed_app, "seed"), (import_app, "import"), (export_app, "export"),
                    (audit_app, "audit"), (projections_app, "projections"), (tokens_app, "tokens"),
                    (api_keys_app, "api-keys")):
    app.add_typer(group, name=name)

err = Console(stderr=True, soft_wrap=True)


@dataclass
class Options:
    database_url: str

    @contextlib.contextmanager
    def store(self, *, migrated: bool = True) -> Iterator[tuple[Database, EventLog]]:
        """The database plus an event log that feeds every installed service's read models."""
        db = Database(self.database_url)
        try:
            if migrated:
                missing = _pending_in_order(db)
                if missing:
                    raise ValueError(f"the schema is not up to date (pending: {', '.join(missing)}); "
                                     "run `clusterhub db upgrade` first")
            yield db, EventLog(db.dialect, projectors=all_projectors())
        finally:
            db.dispose()


def _pending_in_order(db: Database) -> list[str]:
    return list(reversed(pending(db.engine)))  # Alembic walks from the head down


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", show_default=False,
        help="SQLite file or PostgreSQL URL [default: $CLUSTERHUB_DATABASE_URL, else sqlite:///./var/clusterhub.db]",
    )] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on failure.")] = False,
) -> None:
    # --debug is declared here for --help and parsing; main() acts on it, as failures end up there.
    del debug
    ctx.obj = Options(database_url or CommonSettings().database_url)


def cli_metadata() -> Metadata:
    return Metadata(actor=f"cli:{getpass.getuser()}", service="cli")


@contextlib.contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A bar on stderr for long work; drawn on a terminal only, so scripts get clean output.

    The callback takes the count done so far and, optionally, a new total.
    """
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(description, total=total)

        def advance(done: int, new_total: int | None = None) -> None:
            if new_total is not None:
                bar.update(task, total=new_total)
            bar.update(task, completed=done)

        yield advance


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


# --------------------------------------------------------------------------------------------
# db, seed


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    app_role: Annotated[str | None, typer.Option(
        help="PostgreSQL role the services connect as; granted what it may do (insert-only on the log).")] = None,
) -> None:
    """Bring the schema to the latest migration (safe to repeat)."""
    with ctx.obj.store(migrated=False) as (db, _):
        applied = _pending_in_order(db)
        upgrade(db.engine, app_role=app_role)
    typer.echo(f"schema upgraded: {', '.join(applied)}" if applied else "schema already up to date")


def _seed(db: Database, log: EventLog) -> str:
    """Load the demo data unless the registry already holds organisations; say what happened."""
    from services.registry.demo import seed_demo

    with progress_bar("seeding demo data") as advance:
        counts = seed_demo(db, log, progress=advance)
    if counts.get("skipped"):
        return f"demo data not loaded: the store already holds {counts['organisations']} organisations"
    return "demo data loaded: " + ", ".join(f"{value} {key}" for key, value in counts.items())


def _event_count(db: Database, log: EventLog) -> int:
    with db.reading() as conn:
        return log.head_position(conn)


@seed_app.command("demo")
def seed_demo_command(ctx: typer.Context) -> None:
    """Load the demo clusters and organisations (only into a registry without organisations)."""
    with ctx.obj.store() as (db, log):
        typer.echo(_seed(db, log))


# --------------------------------------------------------------------------------------------
# import, export


@import_app.command("organisations")
def import_organisations_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV file to import ('-' reads standard input).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and match, write nothing.")] = False,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Import the valid rows and report the others (default: all or nothing).")] = False,
    cluster: Annotated[str | None, typer.Option(
        "--cluster", help="Make the organisations members of this cluster id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON.")] = False,
) -> None:
    """Import organisations from a CSV file (in one transaction; re-importing creates nothing new)."""
    from services.registry.importer import import_organisations

    from_stdin = str(file) == "-"
    raw = sys.stdin.buffer.read() if from_stdin else file.read_bytes()
    with ctx.obj.store() as (db, log), progress_bar(f"importing {'stdin' if from_stdin else file.name}") as advance:
        report = import_organisations(db, log, raw, dry_run=dry_run, skip_invalid=skip_invalid,
                                      metadata=cli_metadata(), cluster_id=cluster, progress=advance)
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        _print_import_report(report)
    # Refused: the real import would write nothing because of these problems.
    if report.errors and (not skip_invalid or report.valid == 0):
        header = " and the header has problems" if any(e.row == 0 for e in report.errors) else ""
        raise ValueError(f"{report.invalid} of {report.rows} rows are invalid{header}; "
                         + ("a real import would write nothing" if dry_run else "nothing was imported")
                         + ("" if skip_invalid else " (fix them, or use --skip-invalid)"))


def _print_import_report(report: ImportReport) -> None:
    verb = "would create" if report.dry_run else "created"
    line = (f"{'dry run' if report.dry_run else 'import'}: {report.rows} rows, {report.valid} valid, "
            f"{report.invalid} invalid; {verb} {report.new if report.dry_run else report.created}, "
            f"{report.matched} already registered")
    if report.memberships:
        line += f", {report.memberships} memberships {'to add' if report.dry_run else 'added'}"
    typer.echo(line)
    for error in report.errors:
        typer.echo(f"  row {error.row}: {error.field}: {error.message}")


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"


@export_app.command("organisations")
def export_organisations_command(
    ctx: typer.Context,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="File format.")] = ExportFormat.csv,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export every organisation of the registry."""
    from services.registry.importer import export_organisations

    with ctx.obj.store() as (db, _):
        content = export_organisations(db, fmt.value)
    raw = content.encode() if isinstance(content, str) else content
    if output is None:
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
    else:
        output.write_bytes(raw)
        typer.echo(f"wrote {output}", err=True)


# --------------------------------------------------------------------------------------------
# audit


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recompute the hash chain; report the first broken position (exit 1) or the event count."""
    with ctx.obj.store() as (db, log), db.reading() as conn:
        total = log.head_position(conn)
        with progress_bar("verifying the event log", total) as advance:
            report = verify_chain(conn, progress=advance)
    if as_json:
        print_json({"ok": report.ok, "count": report.count, "broken_at": report.broken_at, "reason": report.reason})
    elif report.ok:
        typer.echo(f"ok: {report.count} events")
    else:
        typer.echo(f"broken at position {report.broken_at}: {report.reason} "
                   f"({report.count} events before it verified)")
    if not report.ok:
        raise typer.Exit(1)


def _timestamp(value: str) -> str:
    try:
        return to_timestamp_text(datetime.fromisoformat(value))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2025-03-01T09:00:00Z)") from None


@audit_app.command("log")
def audit_log(
    ctx: typer.Context,
    stream: Annotated[str | None, typer.Option("--stream", help="Only this stream id.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only events caused by this actor.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", parser=_timestamp, help="Only events recorded at or after this ISO time (UTC if no zone).")] = None,
    event_type: Annotated[list[str] | None, typer.Option(
        "--event-type", help="Only this event type (repeatable).")] = None,
    after: Annotated[int, typer.Option("--after", min=0, help="Only events after this position.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many events.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List events from the log, oldest first."""
    with ctx.obj.store() as (db, log), db.reading() as conn:
        events = log.read(conn, after=after, limit=limit, event_types=event_type, stream_id=stream,
                          actor=actor, since=since)
    if as_json:
        for event in events:
            print_json(event.public())
        return
    table = Table("position", "recorded at", "stream", "version", "event type", "actor")
    for event in events:
        table.add_row(str(event.position), event.recorded_at, event.stream_id, str(event.version),
                      event.event_type, event.metadata.get("actor") or "")
    # Piped output keeps whole values: rich would otherwise cut columns to fit 80 characters.
    Console(width=None if sys.stdout.isatty() else 500).print(table)
    typer.echo(f"{len(events)} events" + (" (more with --after)" if len(events) == limit else ""))


# --------------------------------------------------------------------------------------------
# projections


@projections_app.command("rebuild")
def projections_rebuild(ctx: typer.Context) -> None:
    """Clear every read model and replay the whole log through it (one transaction)."""
    projectors = all_projectors()
    with ctx.obj.store() as (db, log):
        total = _event_count(db, log)
        with progress_bar("replaying the event log", total) as advance:
            count = rebuild_projections(db, log, projectors, progress=advance)
    names = ", ".join(projector.name for projector in projectors) or "none installed"
    typer.echo(f"rebuilt {len(projectors)} projections ({names}) from {count} events")


# --------------------------------------------------------------------------------------------
# tokens, api-keys

RoleOption = Annotated[list[str], typer.Option(
    "--role", help="platform_admin, cluster_manager, member or partner_cluster (repeatable).")]
ClusterOption = Annotated[str | None, typer.Option(
    "--cluster", help="The cluster id (managers, members and partner clusters need one).")]
OrganisationOption = Annotated[str | None, typer.Option("--organisation", help="The organisation id (members).")]
ScopeOption = Annotated[list[str] | None, typer.Option("--scope", help="A scope the token carries (repeatable).")]


@tokens_app.command("create")
def tokens_create(
    role: RoleOption,
    cluster: ClusterOption = None,
    organisation: OrganisationOption = None,
    subject: Annotated[str | None, typer.Option(
        "--subject", help="Who the token speaks for; recorded as the actor [default: <you>@cli].")] = None,
    scope: ScopeOption = None,
    expires_in: Annotated[int | None, typer.Option(
        "--expires-in", min=60, max=30 * 86_400, help="Seconds [default: CLUSTERHUB_AUTH_TOKEN_TTL].")] = None,
) -> None:
    """Print a signed bearer token (no database needed: whoever holds the signing keys may mint)."""
    from shared.auth import Tokens

    tokens = Tokens.from_settings(CommonSettings())
    typer.echo(tokens.issue(subject=subject or f"{getpass.getuser()}@cli", roles=role, cluster=cluster,
                            organisation=organisation, scopes=scope or [], expires_in=expires_in))


@api_keys_app.command("create")
def api_keys_create(
    ctx: typer.Context,
    role: RoleOption,
    subject: Annotated[str, typer.Option("--subject", help="The client's name; recorded as the actor.")],
    cluster: ClusterOption = None,
    organisation: OrganisationOption = None,
    scope: ScopeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {client_id, client_secret} as JSON.")] = False,
) -> None:
    """Issue an API key; its secret is printed once and stored only as an argon2 hash."""
    from shared.api_keys import issue_api_key

    with ctx.obj.store() as (db, log), db.writing() as conn:
        issued = issue_api_key(conn, log, subject=subject, roles=role, cluster=cluster, organisation=organisation,
                               scopes=scope or [], metadata=cli_metadata())
    if as_json:
        print_json({"client_id": issued.id, "client_secret": issued.key})
        return
    typer.echo(f"client_id:     {issued.id}\nclient_secret: {issued.key}")
    err.print("the secret is shown only now: store it; trade it for tokens at POST /v1/auth/token")


@api_keys_app.command("revoke")
def api_keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's client_id.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Recorded with the revocation.")] = None,
) -> None:
    """Revoke an API key: no new token is issued for it (tokens already issued live until they expire)."""
    from shared.api_keys import revoke_api_key

    with ctx.obj.store() as (db, log), db.writing() as conn:
        revoke_api_key(conn, log, key_id, reason=reason, metadata=cli_metadata())
    typer.echo(f"revoked {key_id}")


# --------------------------------------------------------------------------------------------
# schedule (standalone: no store involved)


@app.command("schedule")
def schedule_command(
    instance: Annotated[Path, typer.Argument(help="INSTANCE.json: slots, participants, meetings, locked.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write SCHEDULE.json.")],
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds for the whole command.")] = 10.0,
) -> None:
    """Assign B2B meetings to slots and tables; report the objective and a proven upper bound."""
    # Imported here: the solver stack (HiGHS, NumPy) is heavy and only this command needs it.
    from services.events.scheduler.command import run_schedule_command

    raise typer.Exit(run_schedule_command(instance, output, time_limit))


# --------------------------------------------------------------------------------------------
# matchmaking evaluate (standalone: reads CORDIS-format folders, not the store)

matchmaking_app = typer.Typer(help="Partner recommendations.", no_args_is_help=True)
app.add_typer(matchmaking_app, name="matchmaking")


@matchmaking_app.command("evaluate")
def matchmaking_evaluate(
    history: Annotated[Path, typer.Option("--history", help="Folder with projects.csv and participations.csv.")],
    rankings_out: Annotated[Path, typer.Option("--rankings-out", help="One JSON line per query project.")],
    queries: Annotated[Path | None, typer.Option("--queries", help="Folder of consortia to predict.")] = None,
    split_year: Annotated[int | None, typer.Option(
        "--split-year", help="History = projects starting before Y or undated; queries = Y and later.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Recall@10/20 and MRR of the recommender and its baselines on past EU consortia."""
    from services.matchmaking.evaluation import run_evaluate_command

    raise typer.Exit(run_evaluate_command(history, queries, split_year, rankings_out, as_json))


# --------------------------------------------------------------------------------------------
# gdpr: erasure by crypto-shredding (shared/pii.py), and the export of what is held about a person

gdpr_app = typer.Typer(help="Personal data of contact persons (GDPR).", no_args_is_help=True)
app.add_typer(gdpr_app, name="gdpr")


@gdpr_app.command("erase")
def gdpr_erase(
    ctx: typer.Context,
    person: Annotated[str, typer.Argument(help="The person's id (their contact id).")],
) -> None:
    """Delete the person's key: their data reads "erased" everywhere; the events stay and still verify."""
    from services.registry import persons

    with ctx.obj.store() as (db, log):
        erased = persons.erase(db, log, person, cli_metadata())
    typer.echo(f"erased person {person}" if erased else f"person {person} was already erased; nothing changed")


@gdpr_app.command("export")
def gdpr_export(
    ctx: typer.Context,
    person: Annotated[str, typer.Argument(help="The person's id (their contact id).")],
) -> None:
    """Print everything held about the person as JSON (as GET /v1/persons/{id}/export)."""
    from services.registry import persons

    with ctx.obj.store() as (db, log), db.reading() as conn:
        print_json(persons.export(conn, log, person, persons.organisation_of(conn, log, person)))


# --------------------------------------------------------------------------------------------
# serve


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    service: Annotated[str, typer.Option(
        "--service", help=f"One of {', '.join(s.name for s in SERVICES)}, or all (those installed).")] = "all",
    host: Annotated[str | None, typer.Option(
        help="Interface to listen on [default: each service's setting, 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port, with a single --service [default: its setting].")] = None,
    no_seed: Annotated[bool, typer.Option(
        "--no-seed", help="Do not load demo data into a store without organisations.")] = False,
) -> None:
    """Upgrade the schema, load demo data into an empty registry, run the services until Ctrl-C."""
    if service == "all":
        chosen = installed_services()
        if not chosen:
            raise ValueError("no service is installed yet")
        if port is not None:
            raise typer.BadParameter("needs a single --service", param_hint="--port")
    else:
        try:
            chosen = [by_name(service)]
        except LookupError as exc:
            raise typer.BadParameter(str(exc), param_hint="--service") from None
        if not chosen[0].installed():
            raise ValueError(f"the {service} service is not installed yet")
    plan = []
    for item in chosen:
        default_host, default_port = item.address()
        plan.append((item, host or default_host, port or default_port))
    for item, item_host, item_port in plan:
        serving.ensure_port_free(item_host, item_port)
    _prepare_store(ctx.obj, seed=not no_seed)
    serving.run(plan, serving.child_environment(ctx.obj.database_url), _announce)
    err.print("stopped")


def _prepare_store(options: Options, *, seed: bool) -> None:
    with options.store(migrated=False) as (db, log):
        applied = _pending_in_order(db)
        upgrade(db.engine)
        if applied:
            err.print(f"schema upgraded: {', '.join(applied)}")
        if seed:
            err.print(_seed(db, log))


def _announce(children: Sequence[serving.Child]) -> None:
    width = max(len(child.service.name) for child in children)
    for child in children:
        typer.echo(f"{child.service.name:<{width}}  {child.base_url}  docs: {child.base_url}/docs")
    typer.echo("press Ctrl-C to stop")


# --------------------------------------------------------------------------------------------
# entry point


def _one_line(text: object) -> str:
    return " ".join(str(text).split()) or "unknown error"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
        return f"database unavailable: {exc.orig}"
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return f"database error: {exc.orig}"
    if isinstance(exc, sqlalchemy.exc.ArgumentError):
        return f"invalid database URL: {exc}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


# Failures a user can act on from the message alone; anything else is a bug and says so.
EXPECTED = (DomainError, sqlalchemy.exc.SQLAlchemyError, OSError, ValueError, LookupError)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="clusterhub")
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if "--debug" in args:
            raise
        reason = _reason(exc) if isinstance(exc, EXPECTED) else f"{type(exc).__name__}: {exc} (--debug shows where)"
        sys.stderr.write(f"error: {_one_line(reason)}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
