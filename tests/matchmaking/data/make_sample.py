"""Derive the small CORDIS sample the evaluation tests run on (run once; the output is committed).

    .venv/bin/python tests/matchmaking/data/make_sample.py /work/shared/datasets/cordis

Takes 8 H2020 projects starting in 2017-2018 whose coordinator appears earlier, and the
earlier H2020/FP7 projects of those coordinators and of a few of their partners, up to 40
projects. IMI-only projects are left out and text that came from the IMI navigator is blanked
(no licence is stated for it); objectives are cut to 300 characters.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_PROJECTS = 40


def main(source: Path) -> None:
    with open(source / "projects.csv", newline="", encoding="utf-8") as f:
        projects = {r["project_id"]: r for r in csv.DictReader(f) if not r["framework"].startswith("IMI")}
    with open(source / "participations.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["project_id"] in projects]
    members: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        members.setdefault(r["project_id"], []).append(r)
    year = {pid: int(p["start_date"][:4]) if p["start_date"][:4].isdigit() else 0 for pid, p in projects.items()}
    projects_of: dict[str, list[str]] = {}
    for r in rows:
        projects_of.setdefault(r["org_id"], []).append(r["project_id"])

    chosen: list[str] = []
    queries = 0
    for pid in sorted(projects, key=lambda p: (year[p], p)):
        if year[pid] < 2017 or len(members.get(pid, [])) < 6 or queries == 8:
            continue
        lead = next((r["org_id"] for r in members[pid] if r["role"] == "coordinator"), None)
        earlier = [p for p in projects_of.get(lead or "", []) if 0 < year[p] < 2017]
        if len(earlier) < 2:
            continue
        chosen.append(pid)
        queries += 1
        for p in earlier[:4]:
            if p not in chosen and len(chosen) < MAX_PROJECTS:
                chosen.append(p)
    for p in sorted(projects, key=lambda p: -len(members.get(p, []))):  # fill with large early consortia
        if len(chosen) >= MAX_PROJECTS:
            break
        if 0 < year[p] < 2017 and p not in chosen:
            chosen.append(p)

    with open(HERE / "projects.csv", "w", newline="", encoding="utf-8") as f:
        fields = list(next(iter(projects.values())))
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for pid in chosen:
            row = dict(projects[pid])
            if "ericspe" in row["source"]:
                row["objective"] = row["keywords"] = ""
            row["objective"] = row["objective"][:300]
            writer.writerow(row)
    with open(HERE / "participations.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for pid in chosen:
            writer.writerows(members[pid])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
