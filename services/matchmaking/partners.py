"""Partner search over the index: recommendations, the consortium builder and B2B meeting suggestions.

Everything here reads the index under the feed's lock and is CPU work: the API runs it on a
worker thread. The recommender engine (`recommender/`) scores and explains; this module decides
what to ask it and turns its answer into what a cluster manager reads.

Consortium builder. The call's rules (minimum participants, minimum distinct countries, required
partner kinds, eligible countries) are hard to meet one partner at a time: the best-scoring
partners are often from the lead's own country and of the same kind. So the builder runs a beam
search (width BEAM) over the recommender's candidates for the call, maximising

    RULE_WEIGHT x (rule units met) + sum of normalised fit + complementarity

where a rule unit is one required partner found, one distinct country up to the minimum, one
participant up to the minimum; fit is the recommender's score rescaled to [0, 1] over the
candidates; complementarity counts the value-chain stages, call competencies and organisation
kinds the members cover together. With RULE_WEIGHT well above what fit and complementarity one
member can bring, meeting a rule beats a better fit, and among consortia that meet the same rules
the better-fitting, more complementary one wins. Greedy is a beam of width 1; a wider beam recovers
when the first pick (a strong partner from a country already in) blocks a rule later.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from services.matchmaking.feed import IndexFeed, Profile
from services.matchmaking.models import (
    SME,
    CallPublic,
    ConsortiumMember,
    ConsortiumProposal,
    MeetingSuggestion,
    OpportunityPublic,
    PartnerRecommendation,
    RuleCheck,
)
from services.matchmaking.recommender import Query, Recommendation, TfidfTextModel
from shared.auth import Principal
from shared.errors import InvalidInput, NotFound
from shared.text import fold

BEAM = 6
RULE_WEIGHT = 5.0
POOL = 60  # candidates the beam chooses from, plus KIND_POOL of each required kind not among them
KIND_POOL = 10


# --------------------------------------------------------------------------------------------
# Recommendations


def _text(*parts: str | Iterable[str] | None) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif part is not None:
            out.extend(part)
    return " ".join(out)


def _engine_kinds(kinds: Iterable[str]) -> frozenset[str]:
    # The engine knows organisation kinds; an SME is a company of that size (checked by the builder).
    return frozenset("company" if kind == SME else kind for kind in kinds)


def opportunity_query(opportunity: OpportunityPublic, *, lead_id: str | None, text: str | None,
                      limit: int) -> Query:
    return Query(
        text=_text(opportunity.title, opportunity.summary, opportunity.description, opportunity.keywords, text),
        lead_id=lead_id or opportunity.organisation_id,
        required_kinds=frozenset(opportunity.partner_kinds),
        countries=frozenset(opportunity.target_countries),
        competencies=frozenset(opportunity.competencies),
        exclude_ids=frozenset({opportunity.organisation_id}),
        limit=limit,
    )


def call_query(call: CallPublic, *, lead_id: str | None, text: str | None, limit: int,
               exclude_ids: Iterable[str] = ()) -> Query:
    return Query(
        text=_text(call.title, call.description, call.keywords, text),
        lead_id=lead_id,
        required_kinds=_engine_kinds(call.required_kinds),
        countries=frozenset(call.eligible_countries),
        competencies=frozenset(call.competencies),
        exclude_ids=frozenset(exclude_ids),
        limit=limit,
    )


def recommend(feed: IndexFeed, query: Query, viewer: Principal, *, lead_parameter: str = "lead",
              call_kinds: Iterable[str] = ()) -> list[PartnerRecommendation]:
    """The recommender's answer with names, of the organisations `viewer` may see; an unknown lead
    (or one `viewer` may not see) is a 404 naming `lead_parameter`."""
    with feed.lock:
        hidden = feed.hidden_from(viewer)
        if query.lead_id is not None and (feed.profile(query.lead_id) is None or query.lead_id in hidden
                                          or feed.organisation(query.lead_id) is None):
            raise NotFound(f"no organisation {query.lead_id} in the matchmaking index", parameter=lead_parameter)
        found = feed.recommender.recommend(replace(query, exclude_ids=query.exclude_ids | hidden))
        return [_public(feed, item, frozenset(call_kinds)) for item in found]


def _public(feed: IndexFeed, item: Recommendation, call_kinds: frozenset[str]) -> PartnerRecommendation:
    profile = feed.profile(item.org_id)
    return PartnerRecommendation(organisation_id=item.org_id, name=profile.name if profile else item.org_id,
                                 kind=profile.kind if profile else None, country=profile.country if profile else None,
                                 score=item.score, reasons=_reasons(item.reasons, profile, call_kinds))


def _reasons(reasons: Iterable[str], profile: Profile | None, call_kinds: frozenset[str]) -> list[str]:
    """The engine's reasons; where the call asks for an SME (which the engine sees as a company), the
    required-kind reason is said of SMEs only."""
    if SME not in call_kinds or "company" in call_kinds:
        return list(reasons)
    engine_says = "company, which the call requires"
    is_sme = profile is not None and _is(profile, SME)
    return [("SME, which the call requires" if reason == engine_says else reason) for reason in reasons
            if reason != engine_says or is_sme]


# --------------------------------------------------------------------------------------------
# Consortium builder


def _label(kind: str) -> str:
    return "SME" if kind == SME else kind.replace("_", " ")


def _a(kind: str) -> str:
    label = _label(kind)
    return f"an {label}" if label[0].lower() in "aeiou" or kind == SME else f"a {label}"


def _is(profile: Profile, kind: str) -> bool:
    if kind == SME:
        return profile.kind == "company" and profile.company_size == SME
    return profile.kind == kind


def _plural(what: str) -> str:
    return what[:-1] + "ies" if what.endswith("y") else what + "s"


def _more(n: int, what: str) -> str:
    return f"one more {what}" if n == 1 else f"{n} more {_plural(what)}"


def _count(n: int, what: str) -> str:
    return f"{n} {what if n == 1 else _plural(what)}"


@dataclass
class _Candidate:
    profile: Profile
    fit: float  # the recommender's score rescaled to [0, 1] over the candidates
    score: float
    reasons: list[str]
    stages: frozenset[str]
    competencies: frozenset[str]


@dataclass
class _Rules:
    call: CallPublic
    required: Counter[str]
    countries: frozenset[str]  # eligible; empty: any

    def units(self, members: Sequence[Profile]) -> int:
        """How many rule units the members meet (see the module docstring)."""
        met = sum(min(sum(_is(m, kind) for m in members), need) for kind, need in self.required.items())
        met += min(len({m.country for m in members if self.eligible(m)}), self.call.min_countries)
        return met + min(len(members), self.call.min_partners)

    def eligible(self, member: Profile) -> bool:
        return not self.countries or member.country in self.countries

    def check(self, members: Sequence[Profile], pool: Sequence[_Candidate]) -> tuple[list[RuleCheck], list[str]]:
        checks, missing = [], []
        call = self.call
        count = len(members)
        checks.append(RuleCheck(rule="min_partners", satisfied=count >= call.min_partners,
                                detail=f"{_count(count, 'participant')}, the lead included "
                                       f"(at least {call.min_partners})"))
        if count < call.min_partners:
            missing.append(f"{_more(call.min_partners - count, 'participant')} needed "
                           f"(has {count} of {call.min_partners})")
        countries = sorted({m.country for m in members if m.country and self.eligible(m)})
        checks.append(RuleCheck(rule="min_countries", satisfied=len(countries) >= call.min_countries,
                                detail=f"{_count(len(countries), 'distinct country')}: "
                                       f"{', '.join(countries) or 'none'} (at least {call.min_countries})"))
        if len(countries) < call.min_countries:
            missing.append(f"{_more(call.min_countries - len(countries), 'country')} needed "
                           f"(has {len(countries)} of {call.min_countries})")
        for kind, need in sorted(self.required.items()):
            having = [m.name for m in members if _is(m, kind)]
            ok = len(having) >= need
            checks.append(RuleCheck(rule=f"required_kind:{kind}", satisfied=ok,
                                    detail=f"{_count(len(having), _label(kind))} (at least {need})"
                                           + (f": {', '.join(having)}" if having else "")))
            if not ok:
                text = f"no {_label(kind)} yet" + (f" ({need} needed)" if need > 1 else "") if not having else (
                    f"{_more(need - len(having), _label(kind))} needed (has {len(having)} of {need})")
                if not any(_is(c.profile, kind) for c in pool):
                    text += f" (no eligible {_label(kind)} among the candidates)"
                missing.append(text)
        if self.countries:
            outside = [m for m in members if not self.eligible(m)]
            checks.append(RuleCheck(
                rule="eligible_countries", satisfied=not outside,
                detail="every member is in an eligible country" if not outside else
                "; ".join(f"{m.name} is in {m.country or 'an unknown country'}" for m in outside)))
            missing += [f"{m.name} is in {m.country or 'an unknown country'}, not an eligible country"
                        for m in outside]
        return checks, missing

    def satisfied_by(self, member: Profile, before: Sequence[Profile]) -> list[str]:
        """The rules this member helps meet, given the members listed before it."""
        said = [f"{_a(kind)}, which the call requires" for kind in sorted(self.required) if _is(member, kind)]
        earlier = {m.country for m in before if self.eligible(m)}
        if self.call.min_countries > 1 and self.eligible(member) and member.country and member.country not in earlier:
            nth = len(earlier) + 1
            if nth <= self.call.min_countries:
                said.append(f"brings country {member.country} ({nth} of the {self.call.min_countries} countries needed)")
        return said


def _objective(rules: _Rules, base: Sequence[Profile], base_stages: frozenset[str], chosen: Sequence[_Candidate],
               wanted_competencies: frozenset[str]) -> float:
    members = [*base, *(c.profile for c in chosen)]
    value = RULE_WEIGHT * rules.units(members) + sum(c.fit for c in chosen)
    stages = set(base_stages).union(*(c.stages for c in chosen))
    covered = set().union(*(c.competencies for c in chosen)) & wanted_competencies
    kinds = {m.kind for m in members}
    return value + 0.15 * len(stages) + 0.2 * len(covered) + 0.1 * len(kinds)


def _beam(rules: _Rules, base: Sequence[Profile], base_stages: frozenset[str], pool: Sequence[_Candidate],
          picks: int, wanted: frozenset[str]) -> list[_Candidate]:
    beams: list[tuple[float, tuple[int, ...]]] = [(0.0, ())]
    for _ in range(min(picks, len(pool))):
        expanded: dict[tuple[int, ...], float] = {}
        for _, chosen in beams:
            for i in range(len(pool)):
                if i in chosen:
                    continue
                key = tuple(sorted((*chosen, i)))
                if key not in expanded:
                    expanded[key] = _objective(rules, base, base_stages, [pool[j] for j in key], wanted)
        # Ties broken by the candidates' order (best recommendation first), so answers are stable.
        beams = sorted(((value, key) for key, value in expanded.items()), key=lambda item: (-item[0], item[1]))[:BEAM]
    best = beams[0][1]
    return [pool[i] for i in sorted(best, key=lambda i: (-pool[i].score, i))]


def propose_consortium(feed: IndexFeed, call: CallPublic, viewer: Principal, *, lead_id: str, size: int | None,
                       text: str | None, partner_ids: Sequence[str], exclude_ids: Sequence[str]) -> ConsortiumProposal:
    with feed.lock:
        hidden = feed.hidden_from(viewer)
        lead = feed.profile(lead_id)
        if lead is None or lead_id in hidden or feed.organisation(lead_id) is None:
            raise InvalidInput.field("body.lead_organisation_id", f"no organisation {lead_id} in the matchmaking index")
        committed = []
        for i, partner_id in enumerate(dict.fromkeys(partner_ids)):
            profile = feed.profile(partner_id)
            if profile is None or partner_id == lead_id or partner_id in hidden:
                raise InvalidInput.field(f"body.partner_ids.{i}", f"no other organisation {partner_id} in the index")
            committed.append(profile)
        rules = _Rules(call, Counter(call.required_kinds), frozenset(call.eligible_countries))
        size = size if size is not None else max(call.min_partners - 1, 1)
        picks = max(size - len(committed), 0)
        base = [lead, *committed]
        query = call_query(call, lead_id=lead_id, text=text, limit=POOL,
                           exclude_ids={*partner_ids, *exclude_ids, *hidden})
        unmet = [kind for kind in rules.required if not any(_is(m, kind) for m in base)]
        pool = _pool(feed, query, frozenset(call.required_kinds), unmet)
        base_stages = frozenset().union(*(_stages(feed, m.id) for m in base))
        chosen = _beam(rules, base, base_stages, pool, picks, frozenset(call.competencies)) if picks else []
        members: list[ConsortiumMember] = []
        listed: list[Profile] = []
        for role, profile, candidate in [("lead", lead, None), *(("committed", p, None) for p in committed),
                                         *(("proposed", c.profile, c) for c in chosen)]:
            members.append(ConsortiumMember(
                organisation_id=profile.id, name=profile.name, kind=profile.kind, country=profile.country, role=role,
                score=candidate.score if candidate else None, satisfies=rules.satisfied_by(profile, listed),
                reasons=candidate.reasons if candidate else []))
            listed.append(profile)
        checks, missing = rules.check(listed, pool)
        if len(chosen) < picks:
            missing.append(f"only {len(chosen)} of the {picks} partners asked for could be proposed")
        return ConsortiumProposal(call_id=call.id, lead_organisation_id=lead_id, members=members, rules=checks,
                                  missing=missing, eligible=all(check.satisfied for check in checks))


def _stages(feed: IndexFeed, organisation_id: str) -> frozenset[str]:
    organisation = feed.organisation(organisation_id)
    return organisation.stages if organisation else frozenset()


def _pool(feed: IndexFeed, query: Query, call_kinds: frozenset[str], unmet: Sequence[str]) -> list[_Candidate]:
    """The best candidates for the call, and the best few of each unmet required kind: a kind the
    engine ranks low (few past projects, a small prior) must still reach the beam."""
    profiles = {o.id: p for o in feed.index.organisations() if (p := feed.profile(o.id)) is not None}
    found = {item.org_id: item for item in feed.recommender.recommend(query) if item.org_id in profiles}
    for kind in unmet:
        if any(_is(profiles[org_id], kind) for org_id in found):
            continue
        others = {org_id for org_id, profile in profiles.items() if not _is(profile, kind)}
        only_kind = replace(query, exclude_ids=query.exclude_ids | others, limit=KIND_POOL)
        for item in feed.recommender.recommend(only_kind):
            if item.org_id in profiles:
                found.setdefault(item.org_id, item)
    if not found:
        return []
    # Scores of one query (the exclusions aside) are comparable: rescale them together.
    scores = np.array([item.score for item in found.values()])
    low, span = scores.min(), scores.max() - scores.min()
    pool = []
    for item in sorted(found.values(), key=lambda item: -item.score):
        organisation, profile = feed.organisation(item.org_id), profiles[item.org_id]
        assert organisation is not None
        pool.append(_Candidate(profile, float((item.score - low) / span) if span else 1.0, item.score,
                               _reasons(item.reasons, profile, call_kinds), organisation.stages,
                               organisation.competencies))
    return pool


# --------------------------------------------------------------------------------------------
# B2B meeting suggestions


def _keywords(values: Iterable[str]) -> dict[str, str]:
    return {fold(value): value for value in values}


def suggest_meetings(feed: IndexFeed, me: dict[str, Any], cards: Sequence[dict[str, Any]], *,
                     busy_with: set[str], limit: int) -> list[MeetingSuggestion]:
    """Whom `me` (the events service's participant) should ask for a meeting among `cards`.

    score = the organisations' partner score (the recommender, with `me`'s organisation as lead
    and what `me` seeks as the query, rescaled to [0, 1] over the participants)
          + 2 x (how well their offer answers my seek + how well my offer answers theirs: cosines)
          + 0.5 per keyword in common.
    Colleagues, and participants `me` already has an open meeting (request) with, are left out.
    """
    others = [card for card in cards if card["id"] != me["id"] and card["organisation_id"] != me["organisation_id"]
              and card["id"] not in busy_with]
    if not others:
        return []
    with feed.lock:
        org_scores, org_reasons = _organisation_scores(feed, me, {card["organisation_id"] for card in others})
    matches = _mutual_text(me, others)
    mine = _keywords(me.get("keywords") or [])
    suggestions = []
    for card, (answers_me, answers_them, terms_me, terms_them) in zip(others, matches, strict=True):
        shared = [mine[k] for k in _keywords(card.get("keywords") or []) if k in mine]
        reasons = []
        if answers_me > 0 and terms_me:
            reasons.append(f"offers what you seek ({', '.join(terms_me)})")
        if answers_them > 0 and terms_them:
            reasons.append(f"seeks what you offer ({', '.join(terms_them)})")
        if shared:
            reasons.append(f"shared keywords: {', '.join(shared)}")
        reasons += org_reasons.get(card["organisation_id"], [])
        score = org_scores.get(card["organisation_id"], 0.0) + 2 * (answers_me + answers_them) + 0.5 * len(shared)
        suggestions.append(MeetingSuggestion(participant_id=card["id"], name=card["name"],
                                             organisation_id=card["organisation_id"],
                                             organisation_name=card["organisation_name"], score=round(score, 4),
                                             reasons=reasons[:5]))
    suggestions.sort(key=lambda s: (-s.score, s.organisation_name, s.participant_id))
    return suggestions[:limit]


def _organisation_scores(feed: IndexFeed, me: dict[str, Any], organisations: set[str],
                         ) -> tuple[dict[str, float], dict[str, list[str]]]:
    known = {org for org in organisations if feed.organisation(org) is not None}
    lead = me["organisation_id"] if feed.organisation(me["organisation_id"]) is not None else None
    text = _text(me.get("seek"), me.get("keywords"))
    if not known or (lead is None and not text.strip()):
        return {}, {}
    everyone = {organisation.id for organisation in feed.index.organisations()}
    found = feed.recommender.recommend(Query(text=text, lead_id=lead, exclude_ids=frozenset(everyone - known),
                                             limit=len(known)))
    if not found:
        return {}, {}
    scores = np.array([item.score for item in found])
    low, span = scores.min(), scores.max() - scores.min()
    # The engine speaks of "the lead": here the lead is the participant's own organisation.
    return ({item.org_id: float((item.score - low) / span) if span else 1.0 for item in found},
            {item.org_id: [reason.replace("the lead's", "yours").replace("the lead", "you") for reason in item.reasons]
             for item in found})


def _mutual_text(me: dict[str, Any], others: Sequence[dict[str, Any]],
                 ) -> list[tuple[float, float, list[str], list[str]]]:
    """Per other participant: (their offer . my seek, my offer . their seek, and the words behind each).

    The words are the event's own: a TF-IDF model fitted on this event's profiles, so that a word
    no organisation profile uses (the index's vocabulary) still counts between two participants.
    """
    seek = _text(me.get("seek"), me.get("keywords"))
    offer = _text(me.get("offer"), me.get("keywords"))
    texts = [seek, offer]
    for card in others:
        texts += [_text(card.get("offer"), card.get("keywords")), _text(card.get("seek"), card.get("keywords"))]
    model = TfidfTextModel()
    vectors = model.fit_transform(texts)
    dense = vectors.toarray() if hasattr(vectors, "toarray") else np.asarray(vectors)
    terms = model.terms()
    out = []
    for i in range(len(others)):
        their_offer, their_seek = dense[2 + 2 * i], dense[3 + 2 * i]
        out.append((float(dense[0] @ their_offer), float(dense[1] @ their_seek),
                    _top_terms(dense[0] * their_offer, terms), _top_terms(dense[1] * their_seek, terms)))
    return out


def _top_terms(products: np.ndarray, terms: Sequence[str] | None, top: int = 3) -> list[str]:
    if terms is None:
        return []
    best = np.argsort(-products)[:top]
    return [str(terms[i]) for i in best if products[i] > 0]
