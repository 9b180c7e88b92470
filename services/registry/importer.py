"""Bulk import of organisations from CSV, and export to CSV or JSON.

CSV format: UTF-8 with or without BOM; comma or semicolon, whichever the header line uses; the
header names are `OrganisationCreate` field names (case and spaces forgiven); list columns
(roles, stages, competencies, keywords) hold values separated by `|`; an empty cell means absent.

Report rows are numbered from 1 for the first record after the header (the header is row 0, and
problems with the header itself are reported on row 0); blank records count, so in a file without
line breaks inside quoted cells, row n is on line n + 1.

Matching (so that re-importing a file creates nothing new): an organisation in the file is the
one already registered with the same PIC, else the same VAT number, else the same name key
(`shared.text.name_key`: accents, case and legal-form suffix ignored) in the same country.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import ColumnElement, Connection, select

from services.registry import access, domain, queries
from services.registry.api import Admin, Db, Log, Manager
from services.registry.models import MembershipActivate, MembershipCreate, OrganisationCreate, OrganisationPublic
from services.registry.projections import memberships, organisations
from services.registry.vocabulary import CompanySize, FeeCategory, OrganisationKind
from shared.db import Database
from shared.errors import DomainError, InvalidInput
from shared.eventlog import EventLog, Metadata
from shared.http import MIB, RequestMetadata, problems
from shared.text import name_key

Progress = Callable[[int, int], None]

COLUMNS: tuple[str, ...] = tuple(OrganisationCreate.model_fields)
LIST_COLUMNS = frozenset({"roles", "stages", "competencies", "keywords"})
REQUIRED_COLUMNS = tuple(name for name, info in OrganisationCreate.model_fields.items() if info.is_required())
LIST_SEPARATOR = "|"
BOM = b"\xef\xbb\xbf"


class RowError(BaseModel):
    row: int
    field: str
    message: str


@dataclass
class RowResult:
    """One data record of the file: the validated organisation, or why it is not valid."""

    row: int
    organisation: OrganisationCreate | None
    errors: list[RowError] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.organisation is not None


@dataclass
class ParsedCsv:
    rows: list[RowResult]
    header_errors: list[RowError]
    # A missing required column makes every row invalid; its rows then carry no errors of their own.
    blocked: bool = False

    @property
    def errors(self) -> list[RowError]:
        return self.header_errors + [e for r in self.rows for e in r.errors]


def parse_organisations_csv(raw: bytes) -> ParsedCsv:
    """Decode, split and validate a CSV file; never raises for bad rows, only for unreadable files."""
    text = _decode(raw)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InvalidInput.field("file", "empty file: the first line must name the columns")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        records = list(reader)
    except csv.Error as exc:
        raise InvalidInput.field("file", f"not a readable CSV file: {exc}") from exc

    columns = [_column_name(name) for name in header]
    header_errors: list[RowError] = []
    seen: set[str] = set()
    for position, (given, column) in enumerate(zip(header, columns, strict=True), start=1):
        if not column:
            continue  # a trailing delimiter; a value under it is a row problem
        if column in seen:
            header_errors.append(RowError(row=0, field=column, message=f"column {position} repeats an earlier column"))
        elif column not in COLUMNS:
            header_errors.append(RowError(
                row=0, field=given.strip(),
                message="unknown column; known columns: " + ", ".join(COLUMNS),
            ))
        seen.add(column)
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    for name in missing:
        header_errors.append(RowError(row=0, field=name, message="required column is missing; no row can be valid"))

    results: list[RowResult] = []
    for number, cells in enumerate(records, start=1):
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, or lines of bare delimiters as spreadsheets leave them
        if missing:
            results.append(RowResult(number, None))
            continue
        results.append(_validate_row(number, columns, cells))
    _flag_duplicates(results)
    return ParsedCsv(results, header_errors, blocked=bool(missing))


def _decode(raw: bytes) -> str:
    try:
        return raw.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput.field(
            "file", f"not UTF-8 text (byte {exc.start} cannot be decoded); save the file as CSV UTF-8"
        ) from exc


def _column_name(header_cell: str) -> str:
    return header_cell.strip().lower().replace(" ", "_").replace("-", "_")


def _validate_row(number: int, columns: list[str], cells: list[str]) -> RowResult:
    if len(cells) > len(columns):
        extra = [c for c in cells[len(columns):] if c.strip()]
        if extra:
            return RowResult(number, None, [RowError(
                row=number, field="", message=f"{len(cells)} cells but the header names {len(columns)} columns",
            )])
    data: dict[str, Any] = {}
    for position, (column, cell) in enumerate(zip(columns, cells, strict=False), start=1):
        value = cell.strip()
        if not value:
            continue
        if not column:
            return RowResult(number, None, [RowError(
                row=number, field=f"column {position}", message="a value in a column without a name",
            )])
        if column not in COLUMNS or column in data:
            continue  # reported once, on the header row
        if column in LIST_COLUMNS:
            data[column] = [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
        else:
            data[column] = value
    try:
        return RowResult(number, OrganisationCreate.model_validate(data))
    except ValidationError as exc:
        return RowResult(number, None, [_row_error(number, e) for e in exc.errors()])


def _row_error(number: int, error: Any) -> RowError:
    loc = error.get("loc") or ()
    column = str(loc[0]) if loc else ""
    message = error["msg"].removeprefix("Value error, ")
    if len(loc) > 1 and isinstance(loc[1], int):
        # A list item: say which value, since the cell holds several.
        message = f"{error.get('input')!r}: {message}"
    return RowError(row=number, field=column, message=message)


def match_keys(organisation: OrganisationCreate) -> list[tuple[str, str]]:
    """The keys an organisation is recognised by, strongest first: PIC, VAT, name key + country."""
    keys = []
    if organisation.pic:
        keys.append(("pic", organisation.pic))
    if organisation.vat:
        keys.append(("vat", organisation.vat))
    keys.append(("name", f"{name_key(organisation.legal_name)}|{organisation.country}"))
    return keys


_KEY_FIELDS = {"pic": "pic", "vat": "vat", "name": "legal_name"}


def _flag_duplicates(results: list[RowResult]) -> None:
    """A second row for the same organisation is an error: the file must say which one is right."""
    first_row: dict[tuple[str, str], int] = {}
    for result in results:
        if result.organisation is None:
            continue
        keys = match_keys(result.organisation)
        seen = next((key for key in keys if key in first_row), None)
        if seen is None:
            for key in keys:
                first_row.setdefault(key, result.row)
            continue
        result.errors.append(RowError(
            row=result.row, field=_KEY_FIELDS[seen[0]],
            message=f"same organisation as row {first_row[seen]} (matched on {seen[0]})",
        ))
        result.organisation = None


# --------------------------------------------------------------------------------------------
# Import


class RowOutcome(BaseModel):
    """What the import does (or, in a dry run, would do) with one valid row."""

    row: int
    legal_name: str
    action: Literal["create", "match"]
    organisation_id: str | None = None  # None for a row a dry run would create
    matched_on: Literal["pic", "vat", "name"] | None = None


class ImportReport(BaseModel):
    """Counts, every problem found ({row, field, message}; row 0 is the header) and each valid row's outcome."""

    dry_run: bool
    applied: bool = Field(description="True when the rows were written (all valid ones, or with skip_invalid)")
    rows: int = Field(description="Data records read; blank lines are not counted")
    valid: int
    invalid: int
    new: int = Field(description="Valid rows matching no registered organisation")
    matched: int = Field(description="Valid rows matching a registered organisation, left unchanged")
    created: int = Field(description="Organisations written (0 in a dry run or when nothing was applied)")
    memberships: int = Field(0, description="Memberships of `cluster` added (or, in a dry run, to add)")
    errors: list[RowError]
    outcomes: list[RowOutcome]


def import_organisations(db: Database, log: EventLog, raw: bytes, *, dry_run: bool, skip_invalid: bool,
                         metadata: Metadata, cluster_id: str | None = None,
                         progress: Progress | None = None) -> ImportReport:
    """Parse, match and (unless a dry run, or invalid rows block it) write in ONE transaction."""
    parsed = parse_organisations_csv(raw)
    writes = not dry_run and not blocked(parsed, skip_invalid=skip_invalid)
    with db.writing() if writes else db.reading() as conn:
        return run_import(conn, log, parsed, dry_run=dry_run, skip_invalid=skip_invalid, metadata=metadata,
                          cluster_id=cluster_id, progress=progress)


def blocked(parsed: ParsedCsv, *, skip_invalid: bool) -> bool:
    """Whether problems keep the valid rows out: any problem without skip_invalid; a missing column always."""
    return parsed.blocked or (not skip_invalid and bool(parsed.errors))


def run_import(conn: Connection, log: EventLog, parsed: ParsedCsv, *, dry_run: bool, skip_invalid: bool,
               metadata: Metadata, cluster_id: str | None = None, progress: Progress | None = None) -> ImportReport:
    """Match the parsed rows against the registry and, when allowed, register the new ones on `conn`.

    Runs inside the caller's transaction, so a failure on any row rolls back all of them.
    """
    if cluster_id is not None:
        cluster = queries.get_cluster(conn, cluster_id)
        if cluster is None or cluster.archived:
            raise InvalidInput.field("cluster", f"no cluster {cluster_id}" if cluster is None
                                     else f"cluster {cluster_id} is archived")
    apply = not dry_run and not blocked(parsed, skip_invalid=skip_invalid)
    registry = _Registry.load(conn)
    valid = [(r.row, r.organisation) for r in parsed.rows if r.organisation is not None]
    outcomes: list[RowOutcome] = []
    created = added = 0
    for done, (row, organisation) in enumerate(valid, start=1):
        hit = registry.match(organisation)
        outcome = RowOutcome(row=row, legal_name=organisation.legal_name, action="match" if hit else "create",
                             matched_on=hit[0] if hit else None, organisation_id=hit[1] if hit else None)
        outcomes.append(outcome)
        if apply and hit is None:
            outcome.organisation_id = domain.register_organisation(conn, log, organisation, metadata).id
            created += 1
        if cluster_id is not None and registry.may_join(conn, outcome.organisation_id, cluster_id):
            if apply:
                assert outcome.organisation_id is not None
                _add_member(conn, log, outcome.organisation_id, organisation, cluster_id, metadata)
            added += 1
        if progress and (done % 50 == 0 or done == len(valid)):
            progress(done, len(valid))
    return ImportReport(
        dry_run=dry_run,
        applied=apply,
        rows=len(parsed.rows),
        valid=len(valid),
        invalid=len(parsed.rows) - len(valid),
        new=sum(o.action == "create" for o in outcomes),
        matched=sum(o.action == "match" for o in outcomes),
        created=created,
        memberships=added if apply or dry_run else 0,
        errors=parsed.errors,
        outcomes=outcomes,
    )


@dataclass
class _Registry:
    """The match keys of every registered organisation (archived ones too: re-importing must not revive them)."""

    ids: dict[tuple[str, str], str]
    archived: set[str]

    @classmethod
    def load(cls, conn: Connection) -> _Registry:
        o = organisations.c
        ids: dict[tuple[str, str], str] = {}
        archived: set[str] = set()
        rows = conn.execute(select(o.id, o.pic, o.vat, o.name_key, o.country, o.archived)
                            .order_by(o.created_at, o.id))
        for row in rows:
            for key in (("pic", row.pic), ("vat", row.vat), ("name", f"{row.name_key}|{row.country}")):
                if key[1]:
                    ids.setdefault(key, row.id)
            if row.archived:
                archived.add(row.id)
        return cls(ids, archived)

    def match(self, organisation: OrganisationCreate) -> tuple[str, str] | None:
        """(what matched, organisation id) for the strongest key found, else None."""
        for key in match_keys(organisation):
            if key in self.ids:
                return key[0], self.ids[key]
        return None

    def may_join(self, conn: Connection, organisation_id: str | None, cluster_id: str) -> bool:
        """A new organisation joins; a registered one joins unless archived or already a member."""
        if organisation_id is None:
            return True
        if organisation_id in self.archived:
            return False
        return queries.open_membership_id(conn, organisation_id, cluster_id) is None


def fee_category(kind: OrganisationKind | str, company_size: CompanySize | str | None) -> FeeCategory:
    """The membership fee category clusters use for an organisation of this kind and size."""
    kind = OrganisationKind(kind)
    if kind in (OrganisationKind.university, OrganisationKind.research_institute):
        return FeeCategory.research_institution
    if kind is OrganisationKind.company:
        return FeeCategory.large_company if company_size == CompanySize.large else FeeCategory.sme
    return FeeCategory.other


def _add_member(conn: Connection, log: EventLog, organisation_id: str, organisation: OrganisationCreate,
                cluster_id: str, metadata: Metadata) -> None:
    category = fee_category(organisation.kind, organisation.company_size)
    # The cluster's latest fee for the category, as its other members of that category pay.
    m = memberships.c
    fee = conn.execute(select(m.yearly_fee).where(m.cluster_id == cluster_id, m.fee_category == category.value)
                       .order_by(m.created_at.desc(), m.id).limit(1)).scalar()
    membership = domain.apply_membership(conn, log, MembershipCreate(
        organisation_id=organisation_id, cluster_id=cluster_id, fee_category=category,
        yearly_fee=Decimal(fee or "0"),
    ), metadata)
    domain.activate_membership(conn, log, membership.id, MembershipActivate(), metadata)


# --------------------------------------------------------------------------------------------
# Export

ExportFormat = Literal["csv", "json"]


def export_organisations(source: Database | Connection, fmt: ExportFormat = "csv", *,
                         include_archived: bool = False, visible: ColumnElement[bool] | None = None) -> str:
    """Every organisation, by name: CSV in the importer's own format (a file that re-imports
    into an empty store as the same organisations), or JSON as a list of OrganisationPublic."""
    if fmt not in ("csv", "json"):
        raise InvalidInput.field("format", "must be csv or json")
    if isinstance(source, Database):
        with source.reading() as conn:
            return export_organisations(conn, fmt, include_archived=include_archived, visible=visible)
    stmt = select(organisations).order_by(organisations.c.name_key, organisations.c.id)
    if visible is not None:
        stmt = stmt.where(visible)
    if not include_archived:
        stmt = stmt.where(organisations.c.archived.is_(False))
    records = [OrganisationPublic.model_validate(dict(row)) for row in source.execute(stmt).mappings()]
    if fmt == "json":
        return orjson.dumps([{"id": r.id, **r.model_dump(mode="json")} for r in records]).decode()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow([_cell(getattr(record, column)) for column in COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)


# --------------------------------------------------------------------------------------------
# HTTP (paths of their own, so that no `/v1/organisations/{id}` route can catch them)

MAX_IMPORT_BYTES = 10 * MIB
IMPORT_PATH = "/v1/organisation-imports"  # the app lifts its request size limit to MAX_IMPORT_BYTES here
CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv"})

router = APIRouter(tags=["organisations"])


class PayloadTooLarge(DomainError):
    status, title, type_slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(DomainError):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"


class ImportRejected(InvalidInput):
    """Invalid rows (without skip_invalid) kept the whole file out; the problem lists them all."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(
            f"{report.invalid} of {report.rows} rows are invalid"
            + (" and the header has problems" if any(e.row == 0 for e in report.errors) else "")
            + "; nothing was imported (fix them, or import with skip_invalid=true)",
            [e.model_dump() for e in report.errors],
        )
        self.extensions["report"] = report.model_dump(mode="json", exclude={"errors"})


async def _csv_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_MEDIA_TYPES:
        raise UnsupportedMediaType(f"send the file as text/csv, not {media_type or 'without a Content-Type'}",
                                   supported=sorted(CSV_MEDIA_TYPES))
    too_large = PayloadTooLarge(f"CSV files are limited to {MAX_IMPORT_BYTES} bytes; split the file",
                                max_bytes=MAX_IMPORT_BYTES)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_IMPORT_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    IMPORT_PATH,
    response_model=ImportReport,
    responses={201: {"description": "Applied, and organisations were created", "model": ImportReport},
               **problems(413, 415, 422)},
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_organisations_endpoint(
    request: Request,
    response: Response,
    db: Db,
    log: Log,
    _: Admin,
    metadata: RequestMetadata,
    dry_run: Annotated[bool, Query(description="Validate and report; write nothing")] = False,
    skip_invalid: Annotated[bool, Query(description="Write the valid rows even if others are invalid")] = False,
    cluster: Annotated[str | None, Query(max_length=36,
                                         description="Make the organisations members of this cluster")] = None,
) -> ImportReport:
    """Import organisations from a CSV file (all valid rows in one transaction, or nothing). Platform admins
    only: rows are matched against the whole registry, every cluster's organisations included."""
    raw = await _csv_body(request)
    parsed = await anyio.to_thread.run_sync(parse_organisations_csv, raw)

    def work(conn: Connection) -> ImportReport:
        return run_import(conn, log, parsed, dry_run=dry_run, skip_invalid=skip_invalid, metadata=metadata,
                          cluster_id=cluster)

    writes = not dry_run and not blocked(parsed, skip_invalid=skip_invalid)
    report = await (db.write(work) if writes else db.read(work))
    if not dry_run and not report.applied:
        raise ImportRejected(report)
    if report.created or (report.applied and report.memberships):
        response.status_code = 201
    return report


@router.get(
    "/v1/organisation-exports",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **problems(422)},
    response_class=Response,
)
async def export_organisations_endpoint(
    db: Db,
    principal: Manager,
    format: Annotated[ExportFormat, Query(description="csv (the import format) or json")] = "csv",
    include_archived: bool = False,
) -> Response:
    """Every organisation the caller owns (a manager: their cluster's), as CSV that re-imports unchanged, or as JSON."""
    body = await db.read(lambda conn: export_organisations(conn, format, include_archived=include_archived,
                                                           visible=access.organisation_owned(principal)))
    if format == "json":
        return Response(body, media_type="application/json")
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="organisations.csv"'})
