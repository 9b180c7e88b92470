"""Scoring: every organisation in the index gets one linear score, the best get reasons in words.

score(org) = sum over features of weight x feature(org, query). Features are whole-index numpy
vectors (sparse rows of the collaboration matrices scattered into them), so a query costs a few
sparse products and elementwise sums however many organisations there are; only the returned
top results go through Python, to word their reasons.

Features (all 0 when their input is missing: no text, no lead, no projects):

- text_query: cosine of the query text and the organisation's profile (own text + its projects').
- text_projects: log(1 + sum of cosines of the query with each past project the org was in).
- text_projects:<kind>: the same, for organisations of that kind only (company, hospital, research
  institute, university): a slope per kind on top of the shared one. A company joins a consortium
  for its topic, so its past projects' fit with the query says more than a university's, whose
  many projects span every topic: every fit puts the company slope above the university one
  (2016 consortia: +1.4 against ~0); the hospital and institute slopes change sign with the years.
- text_lead: cosine of the lead's profile and the organisation's.
- shared_competencies: competencies in common with the query's (else the lead's).
- worked_with_lead: log(1 + projects shared with the lead); partner_of_lead: 1 if any.
- similar_with_lead: log(1 + 10 x sum of cosines of the query with the projects shared with the lead).
- recent_with_lead: the same, each project weighted 0.5 ** (age / half-life).
- led_with_lead: log(1 + decayed shared projects that the lead or the org coordinated).
- ties_with_lead: log(1 + registry connections, accepted interests, B2B follow-ups with the lead).
- common_partners: log(1 + Adamic-Adar over the decayed collaboration graph).
- network_walk: log(1 + 100 x probability that a 3-step walk with restart from the lead ends here).
- projects, recent_projects: log(1 + number of projects), plain and decayed (the popularity prior).
- same_country: the lead's country.
- kind_affinity, country_affinity: log lift of this kind / country joining consortia coordinated
  by the lead's kind / country, counted over past projects.
- kind_text_affinity: log lift of this kind among the members of past projects weighted by their
  similarity to the query (pharma-heavy topics call for companies, clinical ones for hospitals).
- required_kind: the org is of a kind the query requires.
- same_cluster: shares a cluster with the lead.
- complementary_stages: value-chain stages the org covers and the lead does not.
- kind:<kind>: one prior per organisation kind.

DEFAULT_WEIGHTS says where each weight comes from.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from services.registry.vocabulary import COMPETENCY_LABELS, Competency, ValueChainStage
from shared.errors import InvalidInput

from .index import COMPETENCY_BITS, KINDS, STAGE_BITS, UNKNOWN_KIND, OrganisationIndex, dense_row
from .model import Query, Recommendation, TieKind

KIND_FEATURES = tuple(f"kind:{k}" for k in KINDS) + ("kind:unknown",)
# Kinds frequent enough in past consortia to learn their own text slope; the others share one.
TEXT_SLOPE_KINDS = ("company", "hospital", "research_institute", "university")
TEXT_SLOPE_FEATURES = tuple(f"text_projects:{k}" for k in TEXT_SLOPE_KINDS)
FEATURES: tuple[str, ...] = (
    "text_query",
    "text_projects",
    *TEXT_SLOPE_FEATURES,
    "text_lead",
    "shared_competencies",
    "worked_with_lead",
    "similar_with_lead",
    "partner_of_lead",
    "recent_with_lead",
    "led_with_lead",
    "ties_with_lead",
    "common_partners",
    "network_walk",
    "projects",
    "recent_projects",
    "same_country",
    "kind_affinity",
    "kind_text_affinity",
    "country_affinity",
    "required_kind",
    "same_cluster",
    "complementary_stages",
    *KIND_FEATURES,
)

# Learned by `services.matchmaking.evaluation.learn_weights(history, 2019, internal_years=2)` on the
# whole CORDIS development set (conditional logit; history before 2017 predicting 2017-2018
# consortia, and before 2018 predicting 2018), rounded; refitted when the word-pair text terms and
# the per-kind text slopes came in. The evaluation does not use these: it relearns on its own
# history, never on its query years. Patient organisations are too rare in CORDIS to learn from
# (their learned prior was negative on a handful of cases): they get the association prior.
# CORDIS has no competencies, ties, clusters, stages or required kinds: those weights are set by
# hand, in the units of the learned ones (a registry connection counts about as much as having
# been a partner with the lead plus a recent project; a required kind about as much as a kind prior).
LEARNED_WEIGHTS: dict[str, float] = {
    "text_query": 13.88,
    "text_projects": -0.08,
    "text_projects:company": 0.5,
    "text_projects:hospital": -2.17,
    "text_projects:research_institute": -0.23,
    "text_projects:university": -1.54,
    "text_lead": 1.74,
    "worked_with_lead": -0.45,
    "similar_with_lead": 0.38,
    "partner_of_lead": 0.45,
    "recent_with_lead": -0.1,
    "led_with_lead": 0.63,
    "common_partners": 0.45,
    "network_walk": 0.34,
    "projects": 0.91,
    "recent_projects": -0.17,
    "same_country": 0.17,
    "kind_affinity": 0.36,
    "kind_text_affinity": 1.43,
    "country_affinity": 0.32,
    "kind:company": 0.42,
    "kind:research_institute": 1.2,
    "kind:university": 1.55,
    "kind:hospital": 1.66,
    "kind:regional_authority": 1.35,
    "kind:association": 1.22,
    "kind:patient_organisation": 1.22,
    "kind:unknown": -4.22,
}
HAND_WEIGHTS: dict[str, float] = {
    "shared_competencies": 0.8,
    "ties_with_lead": 1.0,
    "required_kind": 1.5,
    "same_cluster": 0.5,
    "complementary_stages": 0.3,
}
DEFAULT_WEIGHTS: dict[str, float] = {name: 0.0 for name in FEATURES} | LEARNED_WEIGHTS | HAND_WEIGHTS

MAX_REASONS = 5  # feature groups worded per result (the country diversity note comes on top)
_REASON_FLOOR = 0.05  # contributions smaller than this are not worth a sentence


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(weights) - set(FEATURES))
    if unknown:
        raise InvalidInput.field("weights", f"unknown features: {', '.join(unknown)}")
    return {name: 0.0 for name in FEATURES} | dict(weights)


def _label(code: str) -> str:
    return code.replace("_", " ")


def _plural(code: str) -> str:
    label = _label(code)
    return label[:-1] + "ies" if label.endswith("y") else label + "s"


def _popcount(bits: np.ndarray) -> np.ndarray:
    return np.bitwise_count(bits).astype(np.float32)


@dataclass
class _Context:
    """What one query computed once and its reasons reuse."""

    query: Query
    lead: int | None
    query_vector: np.ndarray | None = None
    project_scores: np.ndarray | None = None
    features: dict[str, np.ndarray] = field(default_factory=dict)


class Recommender:
    def __init__(self, index: OrganisationIndex, weights: Mapping[str, float] | None = None) -> None:
        self.index = index
        self.weights = check_weights(DEFAULT_WEIGHTS if weights is None else weights)

    # ---- features --------------------------------------------------------------------------

    def features(self, query: Query, *, kind_columns: bool = False) -> dict[str, np.ndarray]:
        """Every feature as a float32 vector over index rows; features with no input are left out.

        The kind priors are a table lookup when scoring; `kind_columns` adds them as one-hot
        columns, for learning their weights.
        """
        features = self._context(query).features
        if kind_columns:
            for code, name in enumerate(KIND_FEATURES):
                features[name] = (self.index.kind_codes == code).astype(np.float32)
        return features

    def _context(self, query: Query) -> _Context:
        unknown_kinds = sorted(set(query.required_kinds) - set(KINDS))
        if unknown_kinds:
            raise InvalidInput.field("required_kinds", f"unknown organisation kinds: {', '.join(unknown_kinds)}")
        unknown_competencies = sorted(set(query.competencies) - set(COMPETENCY_BITS))
        if unknown_competencies:
            raise InvalidInput.field("competencies", f"unknown competencies: {', '.join(unknown_competencies)}")
        index = self.index
        index.refresh()
        graph, n = index.graph, index.n_rows
        context = _Context(query, self._lead_row(query))
        out = context.features
        if query.text.strip():
            vector = dense_row(index.text_model.transform([query.text]))
            if vector.any():
                context.query_vector = vector
        if context.query_vector is not None:
            self._text_features(context, n)
        lead = context.lead
        if lead is not None:
            self._lead_features(context, n)
        out["projects"] = np.log1p(_pad(graph.projects, n))
        out["recent_projects"] = np.log1p(_pad(graph.projects_recent, n))
        wanted = sum(COMPETENCY_BITS.get(c, 0) for c in query.competencies)
        if not wanted and lead is not None:
            wanted = int(index.competency_bits[lead])
        if wanted:
            out["shared_competencies"] = _popcount(index.competency_bits & np.uint64(wanted))
        if query.required_kinds:
            codes = [KINDS.index(k) for k in query.required_kinds]
            out["required_kind"] = np.isin(index.kind_codes, codes).astype(np.float32)
        return context

    def _text_features(self, context: _Context, n: int) -> None:
        index, graph, out = self.index, self.index.graph, context.features
        assert context.query_vector is not None
        out["text_query"] = index.org_vectors.scores(context.query_vector, n)
        project_scores = index.project_vectors.scores(context.query_vector, graph.incidence.shape[0])
        context.project_scores = project_scores
        per_org = graph.memberships @ project_scores
        out["text_projects"] = np.log1p(_pad(per_org, n))
        for kind, name in zip(TEXT_SLOPE_KINDS, TEXT_SLOPE_FEATURES):
            out[name] = np.where(index.kind_codes == KINDS.index(kind), out["text_projects"], np.float32(0))
        if per_org.sum() > 0:
            kinds = index.kind_codes[: graph.n]
            by_kind = np.bincount(kinds, weights=per_org, minlength=UNKNOWN_KIND + 1) + 1.0
            prior = np.bincount(kinds, weights=graph.projects, minlength=UNKNOWN_KIND + 1) + 1.0
            lift = np.log((by_kind / by_kind.sum()) / (prior / prior.sum())).astype(np.float32)
            out["kind_text_affinity"] = lift[index.kind_codes]
        lead = context.lead
        if lead is not None and lead < graph.n:
            lead_projects = graph.projects_of(lead)
            with_lead = np.zeros_like(project_scores)
            with_lead[lead_projects] = project_scores[lead_projects]
            similar = _pad(graph.memberships @ with_lead, n)
            similar[lead] = 0.0
            if similar.any():
                out["similar_with_lead"] = np.log1p(10.0 * similar)

    def _lead_features(self, context: _Context, n: int) -> None:
        index, graph, out = self.index, self.index.graph, context.features
        lead = context.lead
        assert lead is not None
        lead_vector = index.org_vectors.dense(lead, self._text_dim())
        if lead_vector is not None:
            out["text_lead"] = index.org_vectors.scores(lead_vector, n)
        for name, matrix in (("worked_with_lead", graph.count), ("recent_with_lead", graph.recent),
                             ("led_with_lead", graph.led), ("ties_with_lead", graph.ties)):
            columns, values = graph.neighbours(matrix, lead)
            if len(columns):
                out[name] = np.log1p(_scatter(n, columns, values))
        columns, values = graph.neighbours(graph.count, lead)
        if len(columns):
            out["partner_of_lead"] = _scatter(n, columns, 1.0)
        columns, values = graph.neighbours(graph.recent, lead)
        if len(columns):
            start = sp.csr_matrix((values * graph.aa_weight[columns], (np.zeros_like(columns), columns)),
                                  shape=(1, graph.n))
            out["common_partners"] = np.log1p(_dense(start @ graph.recent, n))
            out["network_walk"] = np.log1p(100.0 * self._walk(lead, n))
        out["kind_affinity"] = graph.kind_lift[int(index.kind_codes[lead])][index.kind_codes]
        lead_country = int(index.country_codes[lead])
        if lead_country:
            codes = index.country_codes
            out["same_country"] = (codes == lead_country).astype(np.float32)
            lift = graph.country_lift
            if lead_country < lift.shape[0]:
                known = codes < lift.shape[1]
                out["country_affinity"] = np.where(known, lift[lead_country][np.minimum(codes, lift.shape[1] - 1)],
                                                   0).astype(np.float32)
        lead_org = index.organisation_at(lead)
        if lead_org.cluster_ids:
            out["same_cluster"] = _scatter(n, index.cluster_rows(lead_org.cluster_ids), 1.0)
        lead_stages = int(index.stage_bits[lead])
        if lead_stages:
            out["complementary_stages"] = _popcount(index.stage_bits & np.uint64(~lead_stages & (2**64 - 1)))

    def _text_dim(self) -> int:
        store = self.index.org_vectors
        return (store.base if store.base is not None else store.patch).shape[1]

    def _lead_row(self, query: Query) -> int | None:
        if query.lead_id is None:
            return None
        row = self.index.row_of(query.lead_id)
        if row is None:
            raise InvalidInput.field("lead_id", f"no organisation {query.lead_id!r} in the index")
        return row

    def _walk(self, lead: int, n: int, steps: int = 3, restart: float = 0.5, floor: float = 1e-4) -> np.ndarray:
        """Personalised-PageRank mass of walks of 1..steps steps from the lead.

        Steps are sparse vector x matrix products; mass below `floor` is dropped before the next
        step (as in approximate PageRank push), so the cost follows the lead's strong
        neighbourhood rather than the index size.
        """
        walk = self.index.graph.walk
        position = sp.csr_matrix(([1.0], ([0], [lead])), shape=(1, walk.shape[0]), dtype=np.float32)
        total = np.zeros(n, dtype=np.float32)
        for step in range(steps):
            position = (position @ walk) * (1.0 - restart)
            total += _dense(position, n)
            if step < steps - 1:
                position.data[position.data < floor] = 0
                position.eliminate_zeros()
        total[lead] = 0.0
        return total

    # ---- ranking ---------------------------------------------------------------------------

    def _score(self, query: Query) -> tuple[np.ndarray, _Context]:
        context = self._context(query)
        kind_weights = np.array([self.weights[name] for name in KIND_FEATURES], dtype=np.float32)
        score = kind_weights[self.index.kind_codes]
        for name, vector in context.features.items():
            weight = self.weights[name]
            if weight:
                score += np.float32(weight) * vector
        return score, context

    def scores(self, query: Query) -> np.ndarray:
        """The score of every index row (removed rows included; `eligible` says which count)."""
        return self._score(query)[0]

    def eligible(self, query: Query) -> np.ndarray:
        index = self.index
        mask = index.active_mask().copy()
        lead = self._lead_row(query)
        if lead is not None:
            mask[lead] = False
        for org_id in query.exclude_ids:
            row = index.row_of(org_id)
            if row is not None:
                mask[row] = False
        if query.countries:
            codes = [c for c in (index.country_code(x) for x in query.countries) if c is not None]
            mask &= np.isin(index.country_codes, codes)
        return mask

    def rank(self, query: Query) -> list[str]:
        """Organisation ids, best first, `query.limit` of them, without reasons (evaluation)."""
        score = self.scores(query)
        return [self.index.id_of(int(r)) for r in _top(score, self.eligible(query), query.limit)]

    def recommend(self, query: Query) -> list[Recommendation]:
        if query.limit < 1:
            raise InvalidInput.field("limit", "must be at least 1")
        score, context = self._score(query)
        top = _top(score, self.eligible(query), query.limit)
        return self._explain(context, top, score)

    # ---- reasons ---------------------------------------------------------------------------

    def _explain(self, context: _Context, rows: np.ndarray, score: np.ndarray) -> list[Recommendation]:
        index, lead = self.index, context.lead
        seen_countries = set()
        if lead is not None and index.organisation_at(lead).country:
            seen_countries.add(index.organisation_at(lead).country)
        results = []
        for row in rows.tolist():
            contributions = {name: round(float(self.weights[name] * vector[row]), 4)
                             for name, vector in context.features.items() if self.weights[name] and vector[row]}
            kind_feature = KIND_FEATURES[int(index.kind_codes[row])]
            if self.weights[kind_feature]:
                contributions[kind_feature] = self.weights[kind_feature]
            reasons = self._reasons(context, row, contributions)
            country = index.organisation_at(row).country
            if country and seen_countries and country not in seen_countries:
                reasons.append(f"adds country diversity ({country})")
            if country:
                seen_countries.add(country)
            results.append(Recommendation(index.id_of(row), round(float(score[row]), 4), tuple(reasons),
                                          contributions))
        return results

    def _reasons(self, context: _Context, row: int, contributions: dict[str, float]) -> list[str]:
        # Features that say the same thing in different units (plain and decayed counts, direct and
        # indirect ties) are collinear: their weights only make sense summed, so reasons are chosen
        # on each group's total contribution.
        totals: dict[str, float] = {}
        for name, contribution in contributions.items():
            group = _REASON_GROUP.get(name, name)
            totals[group] = totals.get(group, 0.0) + contribution
        said: list[str] = []
        reasons = 0  # a text match is one reason told in two sentences: the words, then the projects
        for group, total in sorted(totals.items(), key=lambda item: -item[1]):
            if total <= _REASON_FLOOR or reasons >= MAX_REASONS:
                break
            if group == "text_query":
                sentences = [s for s in (self._sentence("text_query", context, row),
                                         self._sentence("text_projects", context, row)) if s]
            else:
                sentences = [s for s in (self._sentence(group, context, row),) if s]
            said += sentences
            reasons += bool(sentences)
        return said

    def _sentence(self, group: str, context: _Context, row: int) -> str | None:
        index, lead, query = self.index, context.lead, context.query
        org = index.organisation_at(row)
        lead_org = index.organisation_at(lead) if lead is not None else None
        if group == "text_query" and context.query_vector is not None:
            terms = self._shared_terms(context.query_vector, row)
            return f"matches the query on {', '.join(terms)}" if terms else None
        if group == "text_projects":
            names = self._similar_projects(context, row)
            return f"took part in similar projects: {', '.join(names)}" if names else None
        if group == "text_lead" and lead is not None:
            lead_vector = index.org_vectors.dense(lead, self._text_dim())
            terms = self._shared_terms(lead_vector, row) if lead_vector is not None else []
            return f"profile close to the lead's ({', '.join(terms)})" if terms else None
        if group == "shared_competencies":
            wanted = set(query.competencies) or (set(lead_org.competencies) if lead_org else set())
            labels = [COMPETENCY_LABELS[Competency(c)] for c in sorted(set(org.competencies) & wanted)
                      if c in Competency.__members__]
            return f"shares competencies {', '.join(labels)}" if labels else None
        if group == "lead_network" and lead is not None:
            return self._network_sentence(row, lead)
        if group == "ties_with_lead" and lead is not None:
            said = [_TIE_WORDS[k] for k, w in index.ties_between(row, lead).items() if w > 0]
            return "; ".join(said) if said else None
        if group == "popularity":
            graph = index.graph
            count = int(graph.projects[row]) if row < graph.n else 0
            return f"active in {count} past project{'s' if count != 1 else ''}" if count else None
        if group == "same_country" and org.country:
            return f"same country as the lead ({org.country})"
        if group == "country_affinity" and lead_org and lead_org.country and org.country:
            if lead_org.country != org.country:
                return f"partners from {org.country} often join consortia led from {lead_org.country}"
            return None
        if group == "kind_affinity" and lead_org and lead_org.kind and org.kind:
            return f"{_plural(org.kind)} often join consortia led by a {_label(lead_org.kind)}"
        if group == "kind_text_affinity" and org.kind:
            return f"{_plural(org.kind)} are frequent in projects like this one"
        if group == "required_kind" and org.kind:
            return f"{_label(org.kind)}, which the call requires"
        if group == "same_cluster":
            return "in the same cluster as the lead"
        if group == "complementary_stages" and lead_org:
            order = list(ValueChainStage)
            missing = sorted(set(org.stages) - set(lead_org.stages),
                             key=lambda s: order.index(ValueChainStage(s)) if s in STAGE_BITS else len(order))
            return f"covers value-chain stages the lead lacks: {', '.join(map(_label, missing))}" if missing else None
        return None

    def _network_sentence(self, row: int, lead: int) -> str | None:
        """Past work with the lead, else partners in common, else nearness in the network."""
        graph = self.index.graph
        columns, counts = graph.neighbours(graph.count, lead)
        position = np.searchsorted(columns, row)
        if position < len(columns) and columns[position] == row:
            shared = int(counts[position])
            return f"worked with the lead on {shared} project{'s' if shared != 1 else ''}"
        partners, _ = graph.neighbours(graph.count, row)
        common = len(np.intersect1d(columns, partners, assume_unique=True))
        if common:
            return f"{common} common partner{'s' if common > 1 else ''} with the lead"
        return "close to the lead's partners' partners" if len(columns) and len(partners) else None

    def _shared_terms(self, query_vector: np.ndarray, row: int, top: int = 3) -> list[str]:
        terms = self.index.text_model.terms()
        if terms is None:
            return []
        columns, values = self.index.org_vectors.entries(row)
        weights = values * query_vector[columns]
        best = np.argsort(-weights)[:top]
        return [str(terms[columns[i]]) for i in best if weights[i] > 0]

    def _similar_projects(self, context: _Context, row: int, top: int = 2) -> list[str]:
        graph, index = self.index.graph, self.index
        if context.project_scores is None or row >= graph.n:
            return []
        projects = graph.projects_of(row)
        similarity = context.project_scores[projects]
        best = projects[np.argsort(-similarity)[:top]]
        names = []
        for prow in best.tolist():
            project = index.project(index.project_ids[prow])
            if project is not None and context.project_scores[prow] > 0:
                names.append(project.name or project.id)
        return names


def _top(score: np.ndarray, mask: np.ndarray, limit: int) -> np.ndarray:
    candidates = np.flatnonzero(mask)
    if len(candidates) > limit:
        part = np.argpartition(-score[candidates], limit - 1)[:limit]
        candidates = candidates[part]
    # ties broken by row (arrival order), so equal inputs give equal rankings
    return candidates[np.lexsort((candidates, -score[candidates]))]


def _pad(values: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    out[: len(values)] = values[:n]
    return out


def _scatter(n: int, columns: np.ndarray, values: np.ndarray | float) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    out[columns] = values
    return out


def _dense(row: Any, n: int) -> np.ndarray:
    row = row.tocsr()
    out = np.zeros(n, dtype=np.float32)
    out[row.indices] = row.data
    return out


_TIE_WORDS = {
    TieKind.connection: "connected with the lead in the registry",
    TieKind.accepted_interest: "accepted an expression of interest with the lead",
    TieKind.b2b_follow_up: "followed up a B2B meeting with the lead",
    TieKind.co_project: "has a joint project with the lead",
}
_REASON_GROUP = {
    "text_projects": "text_query",
    **{name: "text_query" for name in TEXT_SLOPE_FEATURES},
    "worked_with_lead": "lead_network",
    "recent_with_lead": "lead_network",
    "partner_of_lead": "lead_network",
    "similar_with_lead": "lead_network",
    "led_with_lead": "lead_network",
    "common_partners": "lead_network",
    "network_walk": "lead_network",
    "projects": "popularity",
    "recent_projects": "popularity",
    **{name: "kind_prior" for name in KIND_FEATURES},  # no sentence: a prior, not a reason
}
