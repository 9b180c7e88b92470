"""The standalone command reads INSTANCE.json, writes SCHEDULE.json, and fails in one line."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.events.scheduler import check_schedule, parse_instance, run_schedule_command
from services.events.scheduler.synthetic import brokerage_instance

ROOT = Path(__file__).resolve().parents[2]


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.events.scheduler", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_python_m_reads_and_writes_the_formats(tmp_path: Path) -> None:
    data = brokerage_instance(40, 90, 6, tables="tight", seed=3).model_dump(mode="json")
    data["locked"] = [{"meeting": "m1", "slot": "s2", "table": "T1"}]
    data["participants"][0].pop("unavailable", None)  # optional fields may be absent
    source, target = tmp_path / "instance.json", tmp_path / "schedule.json"
    source.write_text(json.dumps(data))
    started = time.monotonic()
    done = run_module(str(source), "-o", str(target), "--time-limit", "2")
    assert time.monotonic() - started < 2 + 1 + 1.5   # limit + 1 s + interpreter start-up
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    written = json.loads(target.read_text())
    assert set(written) == {"assignments", "unscheduled", "objective", "upper_bound"}
    assert set(written["assignments"][0]) == {"meeting", "slot", "table"}
    assert all(set(u) == {"meeting", "reason"} for u in written["unscheduled"])
    assert {"meeting": "m1", "slot": "s2", "table": "T1"} in written["assignments"]
    from services.events.scheduler import Schedule
    assert check_schedule(parse_instance(data), Schedule.model_validate(written)) == []


@pytest.mark.parametrize(("content", "words"), [
    ("{not json", "is not valid JSON"),
    ('{"slots": [], "participants": [], "meetings": [{"id": "m1", "participants": ["a", "b"]}]}',
     "meetings[0].participants[0]: unknown participant 'a'"),
    ('{"slots": [{"id": "s1", "start": "2026-03-10T09:00:00Z", "tables": 1}], "participants": [{"id": "a"}, '
     '{"id": "b"}], "meetings": [{"id": "m1", "participants": ["a", "b"]}], '
     '"locked": [{"meeting": "m1", "slot": "s1", "table": "T2"}]}',
     "locked[0].table: table 'T2' does not exist in slot 's1' (tables T1..T1)"),
    ("[]", "instance: Input should be a valid dictionary"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, content: str, words: str, capsys) -> None:
    source = tmp_path / "instance.json"
    source.write_text(content)
    assert run_schedule_command(source, tmp_path / "out.json", 1.0) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err
    assert not (tmp_path / "out.json").exists()


def test_missing_file_and_bad_limit(tmp_path: Path, capsys) -> None:
    assert run_schedule_command(tmp_path / "nowhere.json", tmp_path / "out.json", 1.0) == 1
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "i.json").write_text('{"slots": [], "participants": [], "meetings": []}')
    assert run_schedule_command(tmp_path / "i.json", tmp_path / "out.json", 0) == 1
    assert "--time-limit must be a positive" in capsys.readouterr().err


def test_module_failure_has_no_traceback(tmp_path: Path) -> None:
    source = tmp_path / "instance.json"
    source.write_text('{"slots": [], "participants": [{"id": "a", "unavailable": ["s1"]}], "meetings": []}')
    done = run_module(str(source), "-o", str(tmp_path / "out.json"), "--time-limit", "1")
    assert done.returncode == 1
    assert done.stderr == "error: participants[0].unavailable[0]: unknown slot 's1'\n"
