"""The CORDIS evaluation: metrics, the leakage guard, the split, and the command on a small sample."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.matchmaking.evaluation import (
    CordisData,
    CordisProject,
    EvalQuery,
    LeakageError,
    build_index,
    check_no_leakage,
    cordis_kind,
    load_cordis,
    main,
    make_queries,
    recall_at,
    reciprocal_rank,
    run_evaluate_command,
    split,
    subset,
    summarise,
)
from services.matchmaking.recommender import Organisation

SAMPLE = Path(__file__).parent / "data"


class TestMetrics:
    def test_recall_counts_targets_in_the_first_k(self) -> None:
        ranking = ["a", "b", "c", "d"]
        assert recall_at(ranking, frozenset({"b", "d", "z"}), 2) == pytest.approx(1 / 3)
        assert recall_at(ranking, frozenset({"b", "d", "z"}), 4) == pytest.approx(2 / 3)
        assert recall_at(ranking, frozenset({"z"}), 10) == 0.0
        assert recall_at(ranking, frozenset(), 10) == 0.0

    def test_reciprocal_rank_is_one_over_the_first_hit(self) -> None:
        assert reciprocal_rank(["a", "b", "c"], frozenset({"c", "b"})) == 0.5
        assert reciprocal_rank(["a", "b", "c"], frozenset({"a"})) == 1.0
        assert reciprocal_rank(["a", "b", "c"], frozenset({"x"})) == 0.0

    def test_summary_averages_over_queries_with_targets(self) -> None:
        queries = [EvalQuery("p1", "", "lead", frozenset({"a", "b"})),
                   EvalQuery("p2", "", "lead", frozenset({"z"})),
                   EvalQuery("p3", "", "lead", frozenset())]
        rankings = {"p1": ["a", "x", "b"], "p2": ["x"] * 20 + ["z"], "p3": ["a"]}
        assert summarise(rankings, queries) == {"recall@10": 0.5, "recall@20": 0.5, "mrr": round((1 + 1 / 21) / 2, 4)}


def project(pid: str, year: int | None, **members: str) -> CordisProject:
    return CordisProject(pid, year, "", pid, members)


def toy() -> CordisData:
    projects = {p.id: p for p in (
        project("old", 2015, a="coordinator", b="participant", c="participant"),
        project("undated", None, b="member", d="member"),
        project("new", 2017, a="coordinator", b="participant", e="participant", f="participant"),
        project("tiny", 2018, a="coordinator", b="participant"),
        project("orphan", 2018, x="coordinator", a="participant", b="participant"),
    )}
    orgs = {o: Organisation(id=o) for p in projects.values() for o in p.members}
    return CordisData(projects, orgs)


class TestSplitAndQueries:
    def test_undated_projects_are_history(self) -> None:
        history, queries = split(toy(), 2017)
        assert set(history.projects) == {"old", "undated"}
        assert set(queries.projects) == {"new", "tiny", "orphan"}
        assert set(history.organisations) == {"a", "b", "c", "d"}  # described from history rows only

    def test_queries_need_three_members_and_a_known_coordinator(self) -> None:
        history, queries = split(toy(), 2017)
        made = make_queries(history, queries)
        assert made == [EvalQuery("new", "", "a", frozenset({"b"}))]  # e, f unknown to the history

    def test_a_query_project_in_the_history_is_refused(self) -> None:
        history, queries = split(toy(), 2017)
        leaky = subset(toy(), [*history.projects, "new"])
        with pytest.raises(LeakageError):
            make_queries(leaky, queries)
        index = build_index(leaky)
        with pytest.raises(LeakageError):
            check_no_leakage(index, make_queries(history, queries))

    def test_cordis_types_map_to_registry_kinds(self) -> None:
        assert cordis_kind("HES", "KATHOLIEKE UNIVERSITEIT LEUVEN") == "university"
        assert cordis_kind("HES", "ACADEMISCH ZIEKENHUIS LEIDEN") == "hospital"
        assert cordis_kind("PUB", "Hôpitaux Universitaires de Genève") == "hospital"
        assert cordis_kind("PRC", "IBA SA") == "company"
        assert cordis_kind("REC", "INSERM") == "research_institute"
        assert cordis_kind("OTH", "EUROPEAN PATIENTS FORUM") == "patient_organisation"
        assert cordis_kind("", "SOMETHING") is None


def test_the_sample_loads_in_the_documented_format() -> None:
    data = load_cordis(SAMPLE)
    assert len(data.projects) == 40
    assert all(p.members for p in data.projects.values())
    assert any(p.year is not None and p.year >= 2017 for p in data.projects.values())


class TestEvaluateCommand:
    def test_writes_rankings_and_prints_the_figures(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        out = tmp_path / "rankings.jsonl"
        assert run_evaluate_command(SAMPLE, None, 2017, out, True) == 0
        report = json.loads(capsys.readouterr().out)
        for key in ("queries", "history_projects", "history_organisations", "recommender", "baselines",
                    "ratio_recall@20_vs_best_baseline", "latency_ms"):
            assert key in report
        assert set(report["baselines"]) == {"random", "popularity", "coordinator_co_participants", "tfidf_text"}
        for metrics in (report["recommender"], *report["baselines"].values()):
            assert set(metrics) == {"recall@10", "recall@20", "mrr"}
            assert all(0.0 <= v <= 1.0 for v in metrics.values())
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(lines) == report["queries"] == 8
        history, queries = split(load_cordis(SAMPLE), 2017)
        assert report["history_organisations"] >= 101
        for line in lines:
            assert len(line["ranking"]) >= 100
            assert len(set(line["ranking"])) == len(line["ranking"])
            assert set(line["ranking"]) <= set(history.organisations)
            assert line["project_id"] in queries.projects

    def test_all_organisations_when_fewer_than_100(self, tmp_path: Path) -> None:
        small = tmp_path / "small"
        small.mkdir()
        for name in ("projects.csv", "participations.csv"):
            lines = (SAMPLE / name).read_text(encoding="utf-8").splitlines()
            keep = lines[:1] + [line for line in lines[1:] if line.split(",")[0] in _few_projects()]
            (small / name).write_text("\n".join(keep) + "\n", encoding="utf-8")
        out = tmp_path / "rankings.jsonl"
        assert main(["--history", str(small), "--split-year", "2017", "--rankings-out", str(out)]) == 0
        organisations = len(split(load_cordis(small), 2017)[0].organisations)
        assert organisations < 100
        for line in out.read_text().splitlines():
            assert len(json.loads(line)["ranking"]) == organisations - 1  # everyone but the lead

    def test_history_and_queries_must_not_be_the_same_projects(self, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
        out = tmp_path / "r.jsonl"
        assert run_evaluate_command(SAMPLE, SAMPLE, None, out, True) == 2
        assert "--split-year" in capsys.readouterr().err
        assert run_evaluate_command(SAMPLE, tmp_path / "elsewhere", None, out, True) == 2


def _few_projects() -> set[str]:
    """A query project and two earlier projects of its coordinator: well under 100 organisations."""
    history, queries = split(load_cordis(SAMPLE), 2017)
    query = make_queries(history, queries)[0]
    earlier = [p.id for p in history.projects.values() if query.lead in p.members][:2]
    return {query.project_id, *earlier}
