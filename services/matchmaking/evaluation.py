"""Does the recommender find real consortium partners? Measured on CORDIS project consortia.

    python -m services.matchmaking.evaluation --history DIR [--queries DIR] [--split-year Y]
        --rankings-out FILE.jsonl [--json]

The history's projects are loaded into a fresh index (organisations with their CORDIS kind,
country and the text of their projects; projects as the collaboration graph, with roles and
years). For each query project with at least 3 participants and a coordinator known to the
history, the recommender gets the project's own text fields and the coordinator as lead, and
ranks the history's organisations; the targets are the project's other participants known to
the history. The same queries go to four baselines, so the figures are comparable.

Weights are learned on the history alone (`learn_weights`), never on the query years.

On the development data with `--split-year 2017` (139 queries, 1,419 targets, 2,693 history
organisations) the recommender reaches Recall@20 0.2035 against 0.1484 for the best baseline
(the coordinator's past co-participants, ties broken by popularity): x1.37, over the x1.3 target
(Recall@10 0.112, MRR 0.264). Two changes took it there from 0.1909 (x1.29). Every variant was
scored at once on the history-internal validation (weights learned on the 2015 cut, scored on the
2016 queries, nothing from 2017 on) and on 2017, so 2017 is not blind (the 2019+ hold-out is);
these two were kept because they won on the internal validation (0.2156 -> 0.2343) as well:
  - word pairs as text terms ("gene therapy"), each single word plus every pair used by at least
    two profiles (recommender/text.py): internal 0.2156 -> 0.2192, 2017 0.1909 -> 0.1912;
  - a per-kind slope on the similar-past-projects feature (`text_projects:<kind>` for companies,
    hospitals, research institutes and universities; scoring.py): internal 0.2192 -> 0.2343,
    2017 0.1912 -> 0.2035. Learned on the 2016 cut: university ~0, company +1.4, institute +0.95,
    hospital +0.55 over the shared slope: a company or institute joins for its topic, a university
    spans every topic. (The production weights, learned on 2017-2018, order the kinds differently
    except company over university: the slopes are not stable across years, the gain was on both.)
Other splits, same code (before -> after these two changes; best baseline = the coordinator's
past co-participants in both): `--split-year 2016` (227 queries) 0.181 -> 0.198 against 0.155,
x1.17 -> x1.28; `--split-year 2018` (63 queries, weights from the 2017 cut, 21 of its queries with
text) 0.173 -> 0.169 against 0.145, x1.19 -> x1.16. The gain is not uniform across years: x1.3 on
the 2019+ hold-out is not assured. Learning on two cuts instead of one (more queries with text)
steadies 2018 but loses on the internal validation, so one cut stays: internal 0.234 -> 0.228,
2017 0.2035 -> 0.194 (x1.31), 2018 0.169 -> 0.186 (x1.28).
The TF-IDF baseline reads the index's text model, word pairs included (0.1128 -> 0.1130).
Learning the weights on the last history year only (one cut, see `learn_weights`) had taken it
from 0.185 to 0.191 before. Differences of +-0.005 are within the noise of 137 queries. 101 of the
137 scored queries carry no text at all (no title, objective or keywords, only the coordinator);
on the 28 IMI queries, whose consortia are pharma hubs, the recommender was level with popularity
(0.25). 45% of the targets are the coordinator's past partners (mean per-query ceiling of that
signal alone: Recall 0.40).

Figures below are "internal -> 2017" Recall@20 (internal: weights from the 2015 cut scored on
2016 queries; 2017: the evaluation itself), each against the setting of its day.

Tried in the last round, on top of the unigram model (internal 0.2156, 2017 0.1909), none kept:
partner of the lead x its decayed activity (0.211, 0.183); members of the lead's latest-year
projects (0.216, 0.190); projects in the last two years, "momentum" (0.213, 0.178); Jaccard of the
lead's and the org's partner sets (0.211, 0.191); co-participation with the lead's partners of its
last two years (0.213, 0.190); (country, kind) lift among consortia led from the lead's country
(0.216, 0.186); programme family (IMI / FP7 / H2020) popularity weighted by the lead's family mix
(0.212, 0.191), by the query text's (0.209, 0.191), by both (0.210, 0.191) -- the per-programme
idea, with the family taken from history projects only; the lead's profile as a pseudo-query over
the others' past projects (0.209, 0.171) and as a kind lift (0.212, 0.189). Text model: single words
with min_df 2 (0.210, 0.196: worse internally, and it would drop a new member's rare specialty),
max_df 0.3 (0.215, 0.190), no sublinear tf (0.208, 0.191); word pairs with min_df 1 (0.224, 0.191),
min_df 2 on every term (0.222, 0.193), min_df 3 (0.221, 0.193), min_df 2 without sublinear tf (0.216,
0.192). With word pairs (internal 0.2192, 2017 0.1912): company x popularity (0.213, 0.191);
company-only text slope (0.224, 0.198); company x query cosine (0.219, 0.196); per-kind slopes on
the lead-profile cosine (0.213, 0.186); a slope for every kind (0.234, 0.204, but patient
organisations got -56 from a handful of cases); the four kinds without word pairs (0.219, 0.202).
Fitting (all with scikit-learn or scipy, on the history cut only): pairwise logistic regression
(scikit-learn, positives against the negatives in the conditional logit's top K, re-ranking that
top K) K=100 (0.193, 0.166), K=300 with C=0.1 (0.199, 0.181); the conditional logit refitted on its
own top K as a re-ranker, K=100 (0.214, 0.170), K=300 (0.213, 0.183); either over the whole index
instead of re-ranking collapses (the unknown-kind prior is never learned). Tighter L-BFGS tolerance
changes nothing (it had converged). Not available: an SME flag (participations.csv carries only
the CORDIS activity type: PRC, HES, REC, PUB, OTH); the `health_reason` "IMI2-JU project" tag of a
query would help the IMI queries, but it is computed from the consortium's PIC set: leakage.

Tried before, and dropped because they did not help on the history-internal validation (2015 -> 2016)
or on the 2017 split: gradient-boosted trees (pointwise, and on top of the linear score),
coordinate ascent on Recall@20 (overfits), pointwise logistic regression (same as the conditional
logit), bagging, hard-negative sampling, per-query weighting of positives; rank fusion (RRF) and
mixtures of probabilities instead of a log-linear score; pseudo-relevance feedback from the first
top 10; separate weights for queries without text, and text dropout while training; a spectral
(SVD) community embedding of the graph (+0.004, within noise, not worth a refit per change);
features: tie strength divided by consortium size, recency of the last joint project, separate
undated (IMI) co-participation counts, programme match (SC1/MSCA), top-20 project kNN,
country-conditional popularity, interactions of text with popularity; decay half-lives 1-4 years
and undated ages 4-16 years (flat); call topic codes as words (kept, neutral).
Also tried on the internal validation (2016 queries, weights from 2015; Recall@20 0.216 without
them), none better: past co-participation divided by the org's project count (plain 0.212,
decayed 0.207); a bipartite walk lead -> projects -> members normalised by degree and consortium
size (0.211); recency of the org's last project (0.212); share and count of projects the org
coordinated (0.214, 0.216); partners' partners weighted by the partner's conditional
co-occurrence (0.201); the lead's own partner-country and partner-kind distributions as log lifts
(0.215, 0.215); average consortium size of the org and its product with the lead's (0.215);
co-members of projects the lead coordinated, or that the org coordinated with the lead, or where
the lead was a participant (0.192, 0.212, 0.208); lead-degree interactions of the graph features
and per-query max-normalised graph features (0.214); L2 0.1 or 10 (flat); three training cuts
(0.206) or two disjoint ones, each query at its own year (0.211).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from services.registry.vocabulary import OrganisationKind
from shared.text import fold

from .recommender import OrganisationIndex, Organisation, Project, Query, Recommender
from .recommender.scoring import DEFAULT_WEIGHTS, FEATURES, HAND_WEIGHTS

RANKING_LENGTH = 100
# A project's own descriptive fields. Codes shared by nearly every project (programme, legal
# basis, funding scheme) are left out: as words they only make short profiles look alike.
TEXT_FIELDS = ("acronym", "title", "objective", "topic_title", "keywords", "medtech_terms")
CORDIS_KINDS = {
    "PRC": OrganisationKind.company,
    "HES": OrganisationKind.university,
    "REC": OrganisationKind.research_institute,
    "PUB": OrganisationKind.regional_authority,  # public bodies; hospitals are caught by name below
    "OTH": OrganisationKind.association,
}
# CORDIS files hospitals under HES, REC, PUB or OTH; their names say what they are.
_HOSPITAL_WORDS = (
    "hospital", "hopital", "hopitaux", "hospices", "hospitalier", "ziekenhuis", "klinik", "ospedal", "policlinico", "clinic",
    "medical center", "medical centre", "medisch centrum", "sjukhus", "szpital", "hospitais", "sairaala",
    "ospedaliera", "kórház", "korhaz", "nemocnice", "rigshospital", "charite", "university medical",
)
_PATIENT_WORDS = ("patient", "patients")


class LeakageError(AssertionError):
    """A query project reached the history: its consortium would be in the graph it is scored on."""


def cordis_kind(org_type: str, name: str) -> str | None:
    folded = fold(name)
    if any(word in folded for word in _HOSPITAL_WORDS):
        return OrganisationKind.hospital.value
    if org_type == "OTH" and any(word in folded.split() for word in _PATIENT_WORDS):
        return OrganisationKind.patient_organisation.value
    kind = CORDIS_KINDS.get(org_type)
    return kind.value if kind else None


@dataclass(frozen=True)
class CordisProject:
    id: str
    year: int | None
    text: str
    name: str
    members: Mapping[str, str]  # org id -> role


@dataclass(frozen=True)
class CordisData:
    projects: Mapping[str, CordisProject]
    organisations: Mapping[str, Organisation]


@dataclass(frozen=True)
class EvalQuery:
    project_id: str
    text: str
    lead: str
    targets: frozenset[str]


def _topic_tokens(topics: str) -> list[str]:
    """'SC1-PM-11-2016-2017' -> 'topicsc1pm11' and 'topicsc1pm1120162017': one word per call topic
    (split into its parts, 'sc1' and '2016' would match nearly every project)."""
    tokens = []
    for code in filter(None, (t.strip() for t in topics.split(";"))):
        parts = [p for p in re.split(r"[^0-9A-Za-z]+", code.lower()) if p]
        stem = [p for p in parts if not (p.isdigit() and len(p) == 4)]
        tokens += ["topic" + "".join(stem), "topic" + "".join(parts)]
    return tokens


def load_cordis(directory: Path) -> CordisData:
    """projects.csv and participations.csv of one folder (format: datasets/cordis/SOURCE.md)."""
    projects: dict[str, CordisProject] = {}
    with open(directory / "projects.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            start = (row.get("start_date") or "")[:4]
            text = " ".join([*((row.get(name) or "").replace(";", " ") for name in TEXT_FIELDS),
                             *_topic_tokens(row.get("topics") or "")]).strip()
            projects[row["project_id"]] = CordisProject(
                id=row["project_id"], year=int(start) if start.isdigit() else None, text=text,
                name=row.get("acronym") or row["project_id"], members={})
    rows_by_project: dict[str, list[dict[str, str]]] = {}
    with open(directory / "participations.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows_by_project.setdefault(row["project_id"], []).append(row)
    projects = {pid: CordisProject(p.id, p.year, p.text, p.name,
                                   {r["org_id"]: r["role"] for r in rows_by_project.get(pid, [])})
                for pid, p in projects.items()}
    return CordisData(projects, _organisations(projects.values(), rows_by_project))


def _organisations(projects: Iterable[CordisProject], rows_by_project: Mapping[str, list[dict[str, str]]]
                   ) -> dict[str, Organisation]:
    """Each organisation as its latest participation row describes it."""
    latest: dict[str, tuple[int, dict[str, str]]] = {}
    for project in projects:
        for row in rows_by_project.get(project.id, []):
            year = project.year or 0
            if row["org_id"] not in latest or year >= latest[row["org_id"]][0]:
                latest[row["org_id"]] = (year, row)
    return {
        org_id: Organisation(
            id=org_id, name=row.get("org_name") or row.get("org_short_name") or "",
            kind=cordis_kind(row.get("org_type") or "", row.get("org_name") or ""),
            country=row.get("country") or None)
        for org_id, (_, row) in latest.items()
    }


def subset(data: CordisData, keep: Iterable[str]) -> CordisData:
    """The given projects, with organisations described from those projects' rows only."""
    keep = set(keep)
    projects = {pid: p for pid, p in data.projects.items() if pid in keep}
    member_ids = {org for p in projects.values() for org in p.members}
    return CordisData(projects, {o: org for o, org in data.organisations.items() if o in member_ids})


def split(data: CordisData, year: int) -> tuple[CordisData, CordisData]:
    """(projects starting before `year` or undated, projects starting in `year` or later)."""
    before = [pid for pid, p in data.projects.items() if p.year is None or p.year < year]
    after = [pid for pid, p in data.projects.items() if p.year is not None and p.year >= year]
    return subset(data, before), subset(data, after)


def make_queries(history: CordisData, queries: CordisData) -> list[EvalQuery]:
    overlap = set(history.projects) & set(queries.projects)
    if overlap:
        raise LeakageError(f"{len(overlap)} query projects are in the history, e.g. {sorted(overlap)[0]}")
    known = set(history.organisations)
    out = []
    for project in sorted(queries.projects.values(), key=lambda p: p.id):
        if len(project.members) < 3:
            continue
        leads = [org for org, role in project.members.items() if role == "coordinator" and org in known]
        if not leads:
            continue
        targets = frozenset(org for org in project.members if org in known and org != leads[0])
        out.append(EvalQuery(project.id, project.text, leads[0], targets))
    return out


def build_index(history: CordisData, reference_year: int | None = None) -> OrganisationIndex:
    index = OrganisationIndex(reference_year=reference_year)
    for org in history.organisations.values():
        index.upsert(org)
    for project in history.projects.values():
        index.add_project(Project(project.id, dict(project.members), project.text, project.year, project.name))
    index.refresh()
    return index


def check_no_leakage(index: OrganisationIndex, queries: Sequence[EvalQuery]) -> None:
    for query in queries:
        if index.project(query.project_id) is not None:
            raise LeakageError(f"query project {query.project_id} is in the index")


# ---- metrics ----------------------------------------------------------------------------------

def recall_at(ranking: Sequence[str], targets: frozenset[str] | set[str], k: int) -> float:
    return len(set(ranking[:k]) & targets) / len(targets) if targets else 0.0


def reciprocal_rank(ranking: Sequence[str], targets: frozenset[str] | set[str]) -> float:
    for position, org in enumerate(ranking, start=1):
        if org in targets:
            return 1.0 / position
    return 0.0


def summarise(rankings: Mapping[str, Sequence[str]], queries: Sequence[EvalQuery]) -> dict[str, float]:
    """Mean over queries that have targets; MRR counts a target beyond the ranking as 0."""
    scored = [q for q in queries if q.targets]
    if not scored:
        return {"recall@10": 0.0, "recall@20": 0.0, "mrr": 0.0}
    return {
        "recall@10": round(float(np.mean([recall_at(rankings[q.project_id], q.targets, 10) for q in scored])), 4),
        "recall@20": round(float(np.mean([recall_at(rankings[q.project_id], q.targets, 20) for q in scored])), 4),
        "mrr": round(float(np.mean([reciprocal_rank(rankings[q.project_id], q.targets) for q in scored])), 4),
    }


# ---- baselines --------------------------------------------------------------------------------

@dataclass
class Baselines:
    """Rankings without the learned combination; deterministic ones break ties by popularity,
    then by index order, which only makes them stronger."""

    index: OrganisationIndex
    seed: int = 0
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        graph = self.index.graph
        self._popularity = np.zeros(self.index.n_rows)
        self._popularity[: graph.n] = graph.projects

    def _ranked(self, primary: np.ndarray, lead: int, length: int) -> list[str]:
        order = np.lexsort((np.arange(len(primary)), -self._popularity, -primary))
        order = order[order != lead][:length]
        return [self.index.id_of(int(r)) for r in order]

    def random(self, lead: int, length: int) -> list[str]:
        order = self._rng.permutation(self.index.n_rows)
        return [self.index.id_of(int(r)) for r in order[order != lead][:length]]

    def popularity(self, lead: int, length: int) -> list[str]:
        return self._ranked(np.zeros(self.index.n_rows), lead, length)

    def coordinator_co_participants(self, lead: int, length: int) -> list[str]:
        graph = self.index.graph
        columns, counts = graph.neighbours(graph.count, lead)
        primary = np.zeros(self.index.n_rows)
        primary[columns] = counts
        return self._ranked(primary, lead, length)

    def tfidf_text(self, text: str, lead: int, length: int) -> list[str]:
        """Cosine of the query text with each organisation's TF-IDF profile, nothing else."""
        from .recommender.index import dense_row

        vector = dense_row(self.index.text_model.transform([text]))
        return self._ranked(self.index.org_vectors.scores(vector, self.index.n_rows), lead, length)


# ---- learning the weights ---------------------------------------------------------------------

def learn_weights(history: CordisData, before_year: int, *, internal_years: int = 1,
                  l2: float = 1.0) -> dict[str, float]:
    """Fit the feature weights on the history alone, as the product would on past consortia.

    For each cut c in [before_year - internal_years, before_year): an index of the history's
    projects starting before c (or undated) answers queries made of its projects starting in
    [c, before_year), exactly as in the evaluation (text + coordinator in, other participants
    out); the query years themselves are never read. The model is a conditional logit: for each
    query, softmax over all eligible organisations of weights . features, maximising the
    probability of each true partner (a listwise ranking loss, so per-query scale does not
    matter), L2-regularised on standardised features, solved with L-BFGS. Features without signal
    in CORDIS (competencies, ties, clusters, stages, required kinds) keep their hand-set weights.

    One cut (the year just before) by default: the latest year's consortia resemble the next
    year's more than older ones do, and older cuts also count the last year's queries twice.
    Validated on the history alone (weights learned before 2015 -> 2015, scored on 2016 queries):
    Recall@20 0.216 with one cut against 0.207 with two and 0.206 with three.
    """
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    for cut in range(before_year - internal_years, before_year):
        inner_history, inner_queries = split(history, cut)
        queries = [q for q in make_queries(inner_history, inner_queries) if q.targets]
        if not queries:
            continue
        recommender = Recommender(build_index(inner_history, reference_year=cut))
        for query in queries:
            groups.append(_training_group(recommender, query))
    if not groups:
        return dict(DEFAULT_WEIGHTS)
    learned = fit_conditional_logit(groups, l2=l2)
    weights = dict(DEFAULT_WEIGHTS)
    for name, value in zip(FEATURES, learned):
        if name not in HAND_WEIGHTS:
            weights[name] = round(float(value), 4)
    return weights


def _training_group(recommender: Recommender, query: EvalQuery) -> tuple[np.ndarray, np.ndarray]:
    index = recommender.index
    request = Query(text=query.text, lead_id=query.lead)
    features = recommender.features(request, kind_columns=True)
    matrix = np.zeros((index.n_rows, len(FEATURES)), dtype=np.float64)
    for j, name in enumerate(FEATURES):
        if name in features:
            matrix[:, j] = features[name]
    eligible = recommender.eligible(request)
    target = np.zeros(index.n_rows, dtype=bool)
    target[[index.row_of(t) for t in query.targets]] = True
    return matrix[eligible], target[eligible]


def fit_conditional_logit(groups: Sequence[tuple[np.ndarray, np.ndarray]], *, l2: float = 1.0) -> np.ndarray:
    """Weights maximising sum over groups and their positives of log softmax(X w)[positive]."""
    scale = np.vstack([x for x, _ in groups]).std(axis=0)
    scale[scale == 0] = 1.0
    scaled = [(x / scale, y) for x, y in groups]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = 0.5 * l2 * w @ w, l2 * w
        for x, y in scaled:
            s = x @ w
            norm = logsumexp(s)
            p = np.exp(s - norm)
            k = y.sum()
            value -= s[y].sum() - k * norm
            gradient -= x[y].sum(axis=0) - k * (p @ x)
        return value, gradient

    result = minimize(loss, np.zeros(scale.shape[0]), jac=True, method="L-BFGS-B")
    return result.x / scale


# ---- the command ------------------------------------------------------------------------------

def evaluate(history_dir: Path, queries_dir: Path | None, split_year: int | None, rankings_out: Path,
             *, learn: bool = True, seed: int = 0) -> dict[str, object]:
    history_data = load_cordis(history_dir)
    same_dir = queries_dir is None or queries_dir.resolve() == history_dir.resolve()
    if split_year is not None:
        history, held_out = split(history_data, split_year)
        if not same_dir:
            _, held_out = split(load_cordis(queries_dir), split_year)
    elif same_dir:
        raise ValueError("--queries DIR (another folder) or --split-year Y is required")
    else:
        history, held_out = history_data, load_cordis(queries_dir)
    reference_year = split_year or min((p.year for p in held_out.projects.values() if p.year), default=None)
    queries = make_queries(history, held_out)
    index = build_index(history, reference_year=reference_year)
    check_no_leakage(index, queries)
    weights = learn_weights(history, reference_year) if learn and reference_year else dict(DEFAULT_WEIGHTS)
    recommender = Recommender(index, weights)
    baselines = Baselines(index, seed=seed)
    length = min(RANKING_LENGTH, len(index) - 1)

    rankings: dict[str, list[str]] = {}
    baseline_rankings: dict[str, dict[str, list[str]]] = {
        name: {} for name in ("random", "popularity", "coordinator_co_participants", "tfidf_text")}
    latencies = []
    for query in queries:
        started = time.perf_counter()
        rankings[query.project_id] = recommender.rank(Query(text=query.text, lead_id=query.lead, limit=length))
        latencies.append((time.perf_counter() - started) * 1000)
        lead = index.row_of(query.lead)
        assert lead is not None
        baseline_rankings["random"][query.project_id] = baselines.random(lead, length)
        baseline_rankings["popularity"][query.project_id] = baselines.popularity(lead, length)
        baseline_rankings["coordinator_co_participants"][query.project_id] = (
            baselines.coordinator_co_participants(lead, length))
        baseline_rankings["tfidf_text"][query.project_id] = baselines.tfidf_text(query.text, lead, length)

    rankings_out.parent.mkdir(parents=True, exist_ok=True)
    with open(rankings_out, "w", encoding="utf-8") as f:
        for query in queries:
            f.write(json.dumps({"project_id": query.project_id, "ranking": rankings[query.project_id]}) + "\n")

    ours = summarise(rankings, queries)
    others = {name: summarise(r, queries) for name, r in baseline_rankings.items()}
    best = max(m["recall@20"] for m in others.values())
    return {
        "queries": len(queries),
        "queries_with_targets": sum(1 for q in queries if q.targets),
        "targets": sum(len(q.targets) for q in queries),
        "history_projects": len(history.projects),
        "history_organisations": len(index),
        "split_year": split_year,
        "ranking_length": length,
        "recommender": ours,
        "baselines": others,
        "ratio_recall@20_vs_best_baseline": round(ours["recall@20"] / best, 3) if best else None,
        "latency_ms": {"p50": round(float(np.percentile(latencies, 50)), 2) if latencies else None,
                       "p95": round(float(np.percentile(latencies, 95)), 2) if latencies else None},
        "weights": {k: v for k, v in weights.items() if v},
    }


def run_evaluate_command(history: Path, queries: Path | None, split_year: int | None, rankings_out: Path,
                         as_json: bool) -> int:
    try:
        report = evaluate(history, queries, split_year, rankings_out)
    except (ValueError, LeakageError, FileNotFoundError) as error:
        print(f"matchmaking evaluate: {error}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['queries']} queries ({report['targets']} targets) against "
          f"{report['history_organisations']} organisations from {report['history_projects']} projects")
    rows = {"recommender": report["recommender"], **report["baselines"]}  # type: ignore[dict-item]
    print(f"{'':30} {'recall@10':>10} {'recall@20':>10} {'mrr':>8}")
    for name, m in rows.items():
        print(f"{name:30} {m['recall@10']:>10.4f} {m['recall@20']:>10.4f} {m['mrr']:>8.4f}")
    print(f"recall@20 vs best baseline: x{report['ratio_recall@20_vs_best_baseline']}; "
          f"latency p50 {report['latency_ms']['p50']} ms, p95 {report['latency_ms']['p95']} ms")  # type: ignore[index]
    print(f"rankings written to {rankings_out}")
    return 0


HELP = """\
Evaluate partner recommendations on real consortia (CORDIS format: projects.csv, participations.csv).

Which projects are history and which are queries:
  --split-year Y alone (or with --queries equal to --history): the history folder is split;
      projects starting before Y, or undated, are the history; those starting in Y or later are
      the queries.
  --queries DIR (another folder) with --split-year Y: the history folder's projects before Y (or
      undated) are the history; the queries folder's projects starting in Y or later are the queries.
  --queries DIR (another folder) without --split-year: the whole history folder against the whole
      queries folder.
A project present on both sides is an error (exit 2): its consortium would leak into the history.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clusterhub matchmaking evaluate", description=HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=Path, required=True, help="folder of past consortia")
    parser.add_argument("--queries", type=Path, default=None, help="folder of consortia to predict")
    parser.add_argument("--split-year", type=int, default=None, help="split year (see above)")
    parser.add_argument("--rankings-out", type=Path, required=True, help="one JSON line per query")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    return run_evaluate_command(args.history, args.queries, args.split_year, args.rankings_out, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
