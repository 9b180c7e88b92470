"""The standalone commands as outside scripts run them: `clusterhub schedule`, `clusterhub matchmaking evaluate`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLUSTERHUB = str(Path(sys.executable).with_name("clusterhub"))

INSTANCE = {
    "slots": [{"id": "s1", "start": "2026-03-10T09:00:00Z", "tables": 1},
              {"id": "s2", "start": "2026-03-10T09:30:00Z", "tables": 1}],
    "participants": [{"id": "p1", "unavailable": ["s2"]}, {"id": "p2"}, {"id": "p3"}],
    "meetings": [{"id": "m1", "participants": ["p1", "p2"], "priority": 3},
                 {"id": "m2", "participants": ["p1", "p3"], "priority": 1},
                 {"id": "m3", "participants": ["p2", "p3"]}],
    "locked": [],
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLUSTERHUB, *args], capture_output=True, text=True, timeout=60)


def test_schedule_writes_the_documented_format(tmp_path: Path) -> None:
    instance, output = tmp_path / "instance.json", tmp_path / "schedule.json"
    instance.write_text(json.dumps(INSTANCE))
    result = run("schedule", str(instance), "-o", str(output), "--time-limit", "3")
    assert result.returncode == 0, result.stderr
    schedule = json.loads(output.read_text())
    assert set(schedule) >= {"assignments", "unscheduled", "objective", "upper_bound"}
    # p1 is only free in s1 and m1 weighs most: m1 in s1, m3 in s2, m2 left out with a reason.
    placed = {(a["meeting"], a["slot"], a["table"]) for a in schedule["assignments"]}
    assert placed == {("m1", "s1", "T1"), ("m3", "s2", "T1")}
    assert [u["meeting"] for u in schedule["unscheduled"]] == ["m2"] and schedule["unscheduled"][0]["reason"]
    assert schedule["objective"] == 4 and schedule["upper_bound"] == 4


def test_schedule_rejects_bad_input_with_one_line(tmp_path: Path) -> None:
    bad = dict(INSTANCE, locked=[{"meeting": "m1", "slot": "s9", "table": "T1"}])
    instance = tmp_path / "instance.json"
    instance.write_text(json.dumps(bad))
    result = run("schedule", str(instance), "-o", str(tmp_path / "out.json"), "--time-limit", "2")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:") and "s9" in result.stderr
    assert not (tmp_path / "out.json").exists()


SAMPLE = Path(__file__).resolve().parent.parent / "matchmaking" / "data"


def test_matchmaking_evaluate_prints_metrics_and_writes_rankings(tmp_path: Path) -> None:
    rankings = tmp_path / "rankings.jsonl"
    result = run("matchmaking", "evaluate", "--history", str(SAMPLE), "--split-year", "2017",
                 "--rankings-out", str(rankings), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["baselines"]) == {"random", "popularity", "coordinator_co_participants", "tfidf_text"}
    assert {"recall@10", "recall@20", "mrr"} <= set(report["recommender"])
    lines = [json.loads(line) for line in rankings.read_text().splitlines()]
    assert len(lines) == report["queries"] > 0
    assert all(len(line["ranking"]) >= 100 for line in lines)
