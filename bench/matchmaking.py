"""Recommendation latency and index cost with 50,000 organisations.

    .venv/bin/python bench/matchmaking.py [--organisations N] [--projects P] [--queries Q] [--json]

The data is synthetic but shaped like the real thing: organisations of the registry's kinds in
28 countries with short multilingual-ish descriptions and 1-3 competencies; past projects of
3-20 members drawn mostly from one community of ~500 organisations, with a heavy-tailed
popularity (a few hubs in hundreds of projects, most organisations in one or two), dated
2008-2024; a few registry connections. Queries are a random lead plus 8 words of text, as the
partner-search endpoint sends them, answered with reasons (the product path).

Reported: index build time (organisations + projects in, text fitted, matrices built), memory
(tracemalloc peak of a second, traced build, and the resident-set growth of the timed one),
p50/p95/max latency of one recommendation (and its CPU time, which a busy shared machine does not
inflate), the first recommendation after adding one organisation (text patch), one tie (tie
matrices recombined) and one project (project matrices rebuilt).
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.matchmaking.recommender import (  # noqa: E402
    Organisation,
    OrganisationIndex,
    Project,
    Query,
    Recommender,
    TieKind,
)
from services.registry.vocabulary import Competency, OrganisationKind, ValueChainStage  # noqa: E402

COUNTRIES = ("BE DE FR NL IT ES PT AT CH SE DK FI NO PL CZ HU RO BG GR IE UK LU SI SK HR EE LV LT").split()
COMMUNITY_SIZE = 500
_SYLLABLES = "ka lo mi ne ra to su vi de la pe ro ma ni co tu be fa ge hi".split()
_DOMAIN = (
    "imaging mri pet ct ultrasound tracer contrast agent nanoparticle biomarker oncology cardiology "
    "neurology dementia alzheimer diabetes sepsis infection vaccine antibody cell gene therapy "
    "proton radiotherapy dosimetry detector scintillator cyclotron isotope radiopharmaceutical "
    "diagnostic assay sensor wearable telemedicine ehealth platform cloud data analytics deep learning "
    "segmentation registration reconstruction surgery robot implant biomaterial scaffold regulatory "
    "clinical trial validation manufacturing hospital patient paediatric ageing rehabilitation "
    "imagerie médicale santé klinik bildgebung zorg ziekenhuis salute ricerca innovación"
).split()


def vocabulary(rng: np.random.Generator, size: int = 4000) -> list[str]:
    made = {"".join(rng.choice(_SYLLABLES, size=rng.integers(2, 5))) for _ in range(size)}
    return _DOMAIN + sorted(made)


def text(rng: np.random.Generator, words: list[str], n: int, weights: np.ndarray) -> str:
    return " ".join(rng.choice(words, size=n, p=weights))


def synthetic(n_orgs: int, n_projects: int, seed: int = 7) -> tuple[list[Organisation], list[Project], list[tuple[str, str]]]:
    rng = np.random.default_rng(seed)
    words = vocabulary(rng)
    zipf = 1.0 / np.arange(1, len(words) + 1) ** 0.9
    zipf /= zipf.sum()
    kinds = list(OrganisationKind)
    kind_p = np.array([30, 12, 14, 12, 3, 2, 6, 2, 3, 2, 14], dtype=float)
    kind_p /= kind_p.sum()
    competencies = list(Competency)
    stages = list(ValueChainStage)
    orgs = []
    for i in range(n_orgs):
        orgs.append(Organisation(
            id=f"org-{i}",
            name=f"Organisation {i} {text(rng, words, 2, zipf)}",
            kind=str(rng.choice(kinds, p=kind_p)),
            competencies=frozenset(str(c) for c in rng.choice(competencies, size=rng.integers(1, 4), replace=False)),
            stages=frozenset(str(s) for s in rng.choice(stages, size=rng.integers(1, 3), replace=False)),
            country=str(rng.choice(COUNTRIES)),
            description=text(rng, words, int(rng.integers(8, 30)), zipf),
            keywords=tuple(rng.choice(words, size=3)),
            cluster_ids=frozenset({f"cluster-{rng.integers(0, 60)}"}),
        ))
    popularity = np.minimum(rng.pareto(1.5, size=n_orgs) + 1.0, 200.0)  # heavy tail: a few hubs
    communities = n_orgs // COMMUNITY_SIZE
    projects = []
    for p in range(n_projects):
        community = int(rng.integers(0, max(communities, 1)))
        lo = community * COMMUNITY_SIZE
        pool = np.arange(lo, min(lo + COMMUNITY_SIZE, n_orgs))
        size = int(min(20, 3 + rng.geometric(0.15)))
        local = rng.choice(pool, size=size, p=popularity[pool] / popularity[pool].sum())
        outsiders = rng.choice(n_orgs, size=max(1, size // 5), p=popularity / popularity.sum())
        members = list(dict.fromkeys(np.concatenate([local, outsiders]).tolist()))
        projects.append(Project(
            id=f"project-{p}",
            members={f"org-{m}": ("coordinator" if k == 0 else "participant") for k, m in enumerate(members)},
            text=text(rng, words, int(rng.integers(10, 40)), zipf),
            year=int(rng.integers(2008, 2025)),
            name=f"P{p}",
        ))
    ties = [(f"org-{a}", f"org-{b}") for a, b in rng.integers(0, n_orgs, size=(n_orgs // 5, 2)) if a != b]
    return orgs, projects, ties


def build(orgs: list[Organisation], projects: list[Project], ties: list[tuple[str, str]]) -> OrganisationIndex:
    index = OrganisationIndex()
    for org in orgs:
        index.upsert(org)
    for project in projects:
        index.add_project(project)
    for a, b in ties:
        index.add_tie(a, b, TieKind.connection)
    index.refresh()
    return index


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organisations", type=int, default=50_000)
    parser.add_argument("--projects", type=int, default=30_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    orgs, projects, ties = synthetic(args.organisations, args.projects)
    gc.collect()
    rss_before = rss_mb()
    started = time.perf_counter()
    index = build(orgs, projects, ties)
    build_s = time.perf_counter() - started
    rss_delta = rss_mb() - rss_before

    recommender = Recommender(index)
    rng = np.random.default_rng(11)
    words = vocabulary(np.random.default_rng(7))[:300]
    queries = [Query(text=" ".join(rng.choice(words, size=8)), lead_id=f"org-{rng.integers(0, args.organisations)}",
                     limit=20) for _ in range(args.queries)]
    for query in queries[:10]:  # warm-up: first calls pay imports and allocator growth
        recommender.recommend(query)
    latencies, cpu = [], []
    for query in queries:
        started, started_cpu = time.perf_counter(), time.process_time()
        results = recommender.recommend(query)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert len(results) == 20 and all(r.reasons for r in results[:5])

    started = time.perf_counter()
    index.upsert(Organisation(id="org-new", kind="hospital", country="BE",
                              description="proton therapy imaging dosimetry for paediatric oncology"))
    found = recommender.recommend(Query(text="proton therapy dosimetry paediatric", limit=20))
    add_org_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    index.add_tie("org-new", "org-2", TieKind.accepted_interest)
    recommender.recommend(queries[1])
    add_tie_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    index.add_project(Project(id="project-new", members={"org-new": "coordinator", "org-1": "participant"}, year=2025))
    recommender.recommend(queries[0])
    add_project_ms = (time.perf_counter() - started) * 1000

    del recommender, index
    gc.collect()
    tracemalloc.start()
    build(orgs, projects, ties)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    latencies.sort()
    cpu.sort()
    report = {
        "organisations": args.organisations,
        "projects": args.projects,
        "queries": args.queries,
        "index_build_s": round(build_s, 2),
        "memory_mb": {"tracemalloc_peak": round(peak / 2**20, 1), "rss_delta": round(rss_delta, 1)},
        "latency_ms": {
            "p50": round(statistics.median(latencies), 2),
            "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
            "max": round(latencies[-1], 2),
        },
        # CPU time of the same calls: what the code costs, whatever else shares the machine
        "cpu_ms": {"p50": round(statistics.median(cpu), 2), "p95": round(cpu[int(0.95 * (len(cpu) - 1))], 2)},
        "first_recommendation_after_adding_one_organisation_ms": round(add_org_ms, 1),
        "new_organisation_ranked_first": bool(found and found[0].org_id == "org-new"),
        "first_recommendation_after_adding_one_tie_ms": round(add_tie_ms, 1),
        "first_recommendation_after_adding_one_project_ms": round(add_project_ms, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:55} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
