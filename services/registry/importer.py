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
from typing import Any

from pydantic import BaseModel, ValidationError

from services.registry.models import OrganisationCreate
from shared.errors import InvalidInput
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
    for position, (given, column) in enumerate(zip(header, columns), start=1):
        if column in seen:
            header_errors.append(RowError(row=0, field=column, message=f"column {position} repeats an earlier column"))
        elif column not in COLUMNS:
            header_errors.append(RowError(
                row=0, field=given.strip() or f"column {position}",
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
    for column, cell in zip(columns, cells):
        if column not in COLUMNS or column in data:
            continue  # reported once on the header row
        value = cell.strip()
        if not value:
            continue
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


def match_keys(organisation: OrganisationCreate | Any) -> list[tuple[str, str]]:
    """The keys an organisation is recognised by, strongest first: PIC, VAT, name key + country."""
    keys = []
    if organisation.pic:
        keys.append(("pic", organisation.pic))
    if organisation.vat:
        keys.append(("vat", organisation.vat))
    keys.append(("name", f"{name_key(organisation.legal_name)}|{organisation.country}"))
    return keys


def _flag_duplicates(results: list[RowResult]) -> None:
    """A second row for the same organisation is an error: the file must say which one is right."""
    first_row: dict[tuple[str, str], int] = {}
    for result in results:
        if result.organisation is None:
            continue
        keys = match_keys(result.organisation)
        earlier = next((first_row[k] for k in keys if k in first_row), None)
        if earlier is not None:
            what, _ = next(k for k in keys if k in first_row)
            column = {"pic": "pic", "vat": "vat", "name": "legal_name"}[what]
            result.errors.append(RowError(
                row=result.row, field=column, message=f"same organisation as row {earlier} (matched on {what})",
            ))
            result.organisation = None
            continue
        for key in keys:
            first_row.setdefault(key, result.row)
