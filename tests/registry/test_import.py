"""CSV import and CSV/JSON export of organisations, on SQLite and PostgreSQL, directly and over HTTP."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from services.registry import domain
from services.registry.importer import (
    COLUMNS,
    MAX_IMPORT_BYTES,
    export_organisations,
    import_organisations,
    parse_organisations_csv,
)
from services.registry.models import ClusterCreate, OrganisationCreate
from services.registry.projections import PROJECTORS, memberships, organisations
from shared.db import Database
from shared.errors import InvalidInput
from shared.eventlog import EventLog, Metadata
from shared.migrate import upgrade
from tests.conftest import Store
from tests.registry.conftest import BIOWIN

SAMPLE = Path(__file__).parent / "data" / "organisations_sample.csv"
META = Metadata(actor="test:importer")


def sample() -> bytes:
    return SAMPLE.read_bytes()


def sample_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(sample().decode(), newline="")))


def to_csv(rows: list[dict[str, str]], *, columns: tuple[str, ...] | list[str] = COLUMNS, delimiter: str = ",",
           bom: bool = False) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns), delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode()


def log_for(db: Database) -> EventLog:
    return EventLog(db.dialect, projectors=PROJECTORS)


def run(store: Store, raw: bytes, *, dry_run: bool = False, skip_invalid: bool = False, **options):  # type: ignore[no-untyped-def]
    return import_organisations(store.db, log_for(store.db), raw, dry_run=dry_run, skip_invalid=skip_invalid,
                                metadata=META, **options)


def stored_count(db: Database) -> int:
    with db.reading() as conn:
        return conn.execute(select(func.count()).select_from(organisations)).scalar_one()


def event_count(db: Database) -> int:
    with db.reading() as conn:
        return log_for(db).head_position(conn)


def problems_of(report) -> set[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return {(e.row, e.field) for e in report.errors}


BAD_ROWS = [
    {"legal_name": "Ion Beam Applications SA", "kind": "company", "company_size": "large", "country": "BE"},
    {"legal_name": "Nowhere Labs", "kind": "spaceport", "country": "BE"},                       # row 2: kind
    {"legal_name": "Liège Scan", "kind": "company", "country": "Belgium"},                      # row 3: country
    {"legal_name": "CHU de Liège", "kind": "hospital", "roles": "hospital|surgeon", "country": "BE"},  # row 4
    {"legal_name": "Mons Imaging", "kind": "company", "country": "BE", "nuts_region": "FR10"},  # row 5: region
    {"kind": "company", "country": "BE"},                                                       # row 6: name
    {"legal_name": "UMONS", "kind": "university", "company_size": "sme", "country": "BE",
     "pic": "12345"},                                                                            # row 7: two
]


# --------------------------------------------------------------------------------------------
# Parsing (no store)


class TestParsing:
    def test_the_sample_file_is_valid(self) -> None:
        parsed = parse_organisations_csv(sample())
        assert len(parsed.rows) == 20 and parsed.errors == []
        liege = parsed.rows[0].organisation
        assert liege is not None and liege.legal_name == "Université de Liège"
        assert [r.value for r in liege.roles] == ["academic_centre", "researcher"]
        assert liege.keywords == ["cyclotron", "preclinical imaging"]
        lutece = next(r.organisation for r in parsed.rows if r.organisation and r.organisation.pic == "923456781")
        assert lutece.description == "AI triage for chest CT.\nCE marked in 2024."  # a quoted line break

    def test_each_problem_is_one_entry_naming_row_and_field(self) -> None:
        parsed = parse_organisations_csv(to_csv(BAD_ROWS))
        assert parsed.rows[0].valid
        assert {(e.row, e.field) for e in parsed.errors} == {
            (2, "kind"), (3, "country"), (4, "roles"), (5, "nuts_region"), (6, "legal_name"),
            (7, "company_size"), (7, "pic"),
        }
        roles = next(e for e in parsed.errors if e.field == "roles")
        assert "'surgeon'" in roles.message  # which of the cell's values is wrong

    def test_unknown_and_missing_columns_are_reported_on_the_header_row(self) -> None:
        parsed = parse_organisations_csv(b"legal_name,kind,country,colour\nIBA,company,BE,blue\n")
        assert [(e.row, e.field) for e in parsed.errors] == [(0, "colour")]
        assert parsed.rows[0].valid
        parsed = parse_organisations_csv(b"legal_name,country\nIBA,BE\nUMONS,BE\n")
        assert [(e.row, e.field) for e in parsed.errors] == [(0, "kind")]
        assert parsed.blocked and not any(r.valid for r in parsed.rows)

    def test_bom_semicolons_crlf_and_blank_lines_read_like_plain_commas(self) -> None:
        plain = parse_organisations_csv(sample())
        variant = to_csv(sample_rows(), delimiter=";", bom=True).replace(b"\r\n", b"\r\n;;;\r\n\r\n", 1)
        parsed = parse_organisations_csv(variant)
        assert parsed.errors == []
        assert [r.organisation for r in parsed.rows] == [r.organisation for r in plain.rows]
        assert [r.row for r in parsed.rows][:2] == [3, 4]  # blank records keep their numbers

    def test_header_names_forgive_case_spaces_and_a_trailing_delimiter(self) -> None:
        parsed = parse_organisations_csv(b"Legal Name;KIND;Country;\nIBA;company;be;\nUCL;university;BE;x\n")
        assert parsed.rows[0].organisation.country == "BE"  # type: ignore[union-attr]
        assert [(e.row, e.field) for e in parsed.errors] == [(2, "column 4")]  # a value under no name

    def test_a_second_row_for_the_same_organisation_is_an_error(self) -> None:
        rows = [
            {"legal_name": "Université de Liège", "kind": "university", "country": "BE"},
            {"legal_name": "IBA", "kind": "company", "country": "BE", "vat": "BE0428750985"},
            {"legal_name": "UNIVERSITE DE LIEGE", "kind": "university", "country": "BE"},
            {"legal_name": "Ion Beam Applications", "kind": "company", "country": "BE", "vat": "BE 0428.750.985"},
            {"legal_name": "Université de Liège", "kind": "university", "country": "FR"},  # another country
        ]
        parsed = parse_organisations_csv(to_csv(rows))
        assert problems_of(parsed) == {(3, "legal_name"), (4, "vat")}
        assert "row 1" in parsed.errors[0].message and "row 2" in parsed.errors[1].message

    def test_unreadable_files_are_refused_as_a_whole(self) -> None:
        with pytest.raises(InvalidInput) as not_utf8:
            parse_organisations_csv("legal_name,kind,country\nUniversité,university,BE\n".encode("latin-1"))
        assert not_utf8.value.extensions["errors"][0]["field"] == "file"
        with pytest.raises(InvalidInput):
            parse_organisations_csv(b"")


# --------------------------------------------------------------------------------------------
# Importing into a store


def test_dry_run_reports_per_row_errors_and_writes_nothing(store: Store) -> None:
    report = run(store, to_csv(BAD_ROWS), dry_run=True)
    assert report.dry_run and not report.applied
    assert (report.rows, report.valid, report.invalid, report.new, report.created) == (7, 1, 6, 1, 0)
    assert (2, "kind") in problems_of(report) and (7, "pic") in problems_of(report)
    assert report.outcomes[0].action == "create" and report.outcomes[0].organisation_id is None
    assert stored_count(store.db) == 0 and event_count(store.db) == 0


def test_apply_writes_every_valid_row(store: Store) -> None:
    progress: list[tuple[int, int]] = []
    report = run(store, sample(), progress=lambda done, total: progress.append((done, total)))
    assert report.applied and (report.created, report.matched, report.errors) == (20, 0, [])
    assert stored_count(store.db) == 20
    assert progress[-1] == (20, 20)
    with store.db.reading() as conn:
        row = conn.execute(select(organisations).where(organisations.c.pic == "912345678")).mappings().one()
    assert row["legal_name"] == "Gosselies Radiopharma SA" and row["keywords"] == ["GMP production", "theranostics"]
    assert {o.organisation_id for o in report.outcomes} == set(_ids(store.db))


def _ids(db: Database) -> list[str]:
    with db.reading() as conn:
        return list(conn.execute(select(organisations.c.id)).scalars())


def test_one_invalid_row_keeps_the_whole_file_out(store: Store) -> None:
    rows = sample_rows()
    rows[12]["country"] = "Deutschland"
    report = run(store, to_csv(rows))
    assert not report.applied and report.created == 0
    assert problems_of(report) == {(13, "country")}
    assert stored_count(store.db) == 0 and event_count(store.db) == 0


def test_an_unknown_column_also_blocks_unless_skipped(store: Store) -> None:
    rows = [{**row, "colour": "blue"} for row in sample_rows()]
    raw = to_csv(rows, columns=[*COLUMNS, "colour"])
    assert not run(store, raw).applied and stored_count(store.db) == 0
    report = run(store, raw, skip_invalid=True)
    assert report.applied and report.created == 20 and problems_of(report) == {(0, "colour")}


def test_skip_invalid_writes_the_valid_rows_and_reports_the_others(store: Store) -> None:
    report = run(store, to_csv(BAD_ROWS), skip_invalid=True)
    assert report.applied and (report.created, report.invalid) == (1, 6)
    assert stored_count(store.db) == 1


def test_a_missing_required_column_writes_nothing_even_with_skip_invalid(store: Store) -> None:
    report = run(store, b"legal_name,country\nIBA,BE\n", skip_invalid=True)
    assert not report.applied and stored_count(store.db) == 0


def test_reimporting_the_same_file_creates_nothing(store: Store) -> None:
    assert run(store, sample()).created == 20
    again = run(store, to_csv(sample_rows(), delimiter=";", bom=True))
    assert again.applied and (again.created, again.matched) == (0, 20)
    assert stored_count(store.db) == 20


def test_rows_match_on_pic_then_vat_then_name_and_country(store: Store) -> None:
    log = log_for(store.db)
    with store.db.writing() as conn:
        def register(**fields: str) -> str:
            return domain.register_organisation(conn, log, OrganisationCreate.model_validate(fields), META).id
        uliege = register(legal_name="Université de Liège", kind="university", country="BE")
        iba = register(legal_name="Ion Beam Applications SA", kind="company", country="BE", vat="BE0428750985")
        umons = register(legal_name="Université de Mons", kind="university", country="BE", pic="999845234")
        medicen_lab = register(legal_name="Laboratoire Lutèce S.A.S.", kind="company", country="FR")
    rows = [
        {"legal_name": "UNIVERSITE DE LIEGE", "kind": "university", "country": "be"},
        {"legal_name": "IBA", "kind": "company", "country": "BE", "vat": "BE 0428.750.985"},
        {"legal_name": "UMONS", "kind": "university", "country": "BE", "pic": "999845234"},
        {"legal_name": "laboratoire lutece", "kind": "company", "country": "FR"},
        {"legal_name": "Université de Liège", "kind": "university", "country": "FR"},  # same name, elsewhere
    ]
    report = run(store, to_csv(rows))
    assert [(o.action, o.matched_on, o.organisation_id) for o in report.outcomes[:4]] == [
        ("match", "name", uliege), ("match", "vat", iba), ("match", "pic", umons), ("match", "name", medicen_lab),
    ]
    assert report.outcomes[4].action == "create" and report.created == 1
    assert stored_count(store.db) == 5


def test_cluster_option_makes_new_and_matched_organisations_active_members(store: Store) -> None:
    log = log_for(store.db)
    with store.db.writing() as conn:
        cluster = domain.register_cluster(conn, log, ClusterCreate.model_validate(BIOWIN), META)
    rows = sample_rows()
    assert run(store, to_csv(rows[:5])).created == 5
    report = run(store, sample(), cluster_id=cluster.id)
    assert (report.created, report.matched, report.memberships) == (15, 5, 20)
    with store.db.reading() as conn:
        statuses = conn.execute(select(memberships.c.status, func.count()).where(memberships.c.cluster_id == cluster.id)
                                .group_by(memberships.c.status)).all()
    assert [tuple(s) for s in statuses] == [("active", 20)]
    assert run(store, sample(), cluster_id=cluster.id).memberships == 0


def test_an_unknown_cluster_is_refused_before_anything_is_written(store: Store) -> None:
    with pytest.raises(InvalidInput) as refused:
        run(store, sample(), cluster_id="00000000-0000-4000-8000-000000000000")
    assert refused.value.extensions["errors"][0]["field"] == "cluster"
    assert stored_count(store.db) == 0


# --------------------------------------------------------------------------------------------
# Export


def _fresh_sqlite(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'source.db'}")
    upgrade(db.engine)
    return db


def test_exported_csv_imports_into_an_empty_store_as_the_same_organisations(store: Store, tmp_path: Path) -> None:
    source = _fresh_sqlite(tmp_path)
    try:
        import_organisations(source, log_for(source), sample(), dry_run=False, skip_invalid=False, metadata=META)
        exported = export_organisations(source, "csv")
    finally:
        source.dispose()
    report = run(store, exported.encode())
    assert report.created == 20 and report.errors == []
    assert sorted(export_organisations(store.db, "csv").splitlines()) == sorted(exported.splitlines())
    assert exported.splitlines()[0] == ",".join(COLUMNS)


def test_json_export_lists_public_records_without_archived_ones(store: Store) -> None:
    run(store, sample())
    records = orjson.loads(export_organisations(store.db, "json"))
    assert len(records) == 20 and list(records[0])[0] == "id"
    assert {"version", "created_at", "archived"} <= records[0].keys()
    target = records[0]
    with store.db.writing() as conn:
        domain.archive_organisation(conn, log_for(store.db), target["id"], target["version"], META)
    assert len(orjson.loads(export_organisations(store.db, "json"))) == 19
    assert len(orjson.loads(export_organisations(store.db, "json", include_archived=True))) == 20
    # Archived organisations still match: re-importing the file does not bring a second one.
    assert run(store, sample()).created == 0


# --------------------------------------------------------------------------------------------
# HTTP

CSV = {"content-type": "text/csv; charset=utf-8"}


def _is_problem(response: httpx.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


async def test_http_dry_run_then_apply_then_reimport(client: httpx.AsyncClient, store: Store) -> None:
    dry = await client.post("/v1/organisation-imports", params={"dry_run": "true"}, content=sample(), headers=CSV)
    assert dry.status_code == 200 and dry.json()["new"] == 20 and stored_count(store.db) == 0
    applied = await client.post("/v1/organisation-imports", content=sample(), headers=CSV)
    assert applied.status_code == 201, applied.text
    assert applied.json()["created"] == 20 and applied.json()["applied"] is True
    again = await client.post("/v1/organisation-imports", content=sample(), headers=CSV)
    assert again.status_code == 200 and (again.json()["created"], again.json()["matched"]) == (0, 20)


async def test_http_invalid_rows_give_422_listing_every_row_and_field(client: httpx.AsyncClient, store: Store) -> None:
    problem = _is_problem(await client.post("/v1/organisation-imports", content=to_csv(BAD_ROWS), headers=CSV), 422)
    assert {(e["row"], e["field"]) for e in problem["errors"]} >= {(2, "kind"), (3, "country"), (7, "pic")}
    assert problem["report"]["applied"] is False and problem["report"]["invalid"] == 6
    assert stored_count(store.db) == 0
    skipped = await client.post("/v1/organisation-imports", params={"skip_invalid": "true"},
                                content=to_csv(BAD_ROWS), headers=CSV)
    assert skipped.status_code == 201 and skipped.json()["created"] == 1


async def test_http_refuses_other_media_types_and_oversized_files(client: httpx.AsyncClient) -> None:
    problem = _is_problem(await client.post("/v1/organisation-imports", json={"legal_name": "IBA"}), 415)
    assert "text/csv" in problem["detail"]
    huge = sample() + b"\n" * (MAX_IMPORT_BYTES + 1 - len(sample()))
    _is_problem(await client.post("/v1/organisation-imports", content=huge, headers=CSV), 413)


async def test_http_accepts_files_above_the_general_request_limit(client: httpx.AsyncClient) -> None:
    # 2 MiB of trailing blank lines: above the 1 MiB limit of other routes, within the import's 10 MiB.
    padded = sample() + b"\n" * (2 * 1024 * 1024)
    response = await client.post("/v1/organisation-imports", params={"dry_run": "true"}, content=padded, headers=CSV)
    assert response.status_code == 200, response.text
    assert response.json()["valid"] == 20


async def test_http_unreadable_file_and_unknown_cluster_are_422(client: httpx.AsyncClient) -> None:
    problem = _is_problem(await client.post("/v1/organisation-imports", content=b"\xff\xfe\x00", headers=CSV), 422)
    assert problem["errors"][0]["field"] == "file"
    problem = _is_problem(await client.post("/v1/organisation-imports", params={"cluster": "nope"},
                                            content=sample(), headers=CSV), 422)
    assert problem["errors"][0]["field"] == "cluster"


async def test_http_membership_import_into_a_cluster(client: httpx.AsyncClient) -> None:
    cluster = (await client.post("/v1/clusters", json=BIOWIN)).json()
    response = await client.post("/v1/organisation-imports", params={"cluster": cluster["id"]},
                                 content=sample(), headers=CSV)
    assert response.status_code == 201 and response.json()["memberships"] == 20


async def test_http_export_csv_and_json(client: httpx.AsyncClient) -> None:
    await client.post("/v1/organisation-imports", content=sample(), headers=CSV)
    as_csv = await client.get("/v1/organisation-exports")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert len(parse_organisations_csv(as_csv.content).rows) == 20
    as_json = await client.get("/v1/organisation-exports", params={"format": "json"})
    assert as_json.headers["content-type"] == "application/json" and len(as_json.json()) == 20
    problem = _is_problem(await client.get("/v1/organisation-exports", params={"format": "xml"}), 422)
    assert problem["errors"][0]["field"] == "query.format"
