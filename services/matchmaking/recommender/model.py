"""What the recommender knows and answers: organisations, past projects, ties, queries, results.

Plain frozen values with no storage behind them: the service builds them from events, the
evaluation from CORDIS files, the tests by hand.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from services.registry.vocabulary import COMPETENCY_LABELS, Competency


class TieKind(StrEnum):
    """Collaboration edges other than a shared project (which `Project` carries with its text)."""

    co_project = "co_project"  # a joint project known only as a pair (registry connection kind)
    connection = "connection"  # partner_of / supplier_of / spin_off_of in the registry
    accepted_interest = "accepted_interest"  # an expression of interest the other side accepted
    b2b_follow_up = "b2b_follow_up"  # a B2B meeting that led to a follow-up


COORDINATOR = "coordinator"


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str = ""
    kind: str | None = None  # OrganisationKind value
    roles: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    competencies: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    country: str | None = None
    region: str | None = None
    description: str = ""
    cluster_ids: frozenset[str] = frozenset()

    def own_text(self) -> str:
        """The words the organisation says about itself; its projects' text is added by the index."""
        labels = [COMPETENCY_LABELS.get(Competency(c), c) if c in Competency.__members__ else c
                  for c in sorted(self.competencies)]
        return " ".join([self.name, self.description, " ".join(self.keywords), " ".join(labels)]).strip()


@dataclass(frozen=True)
class Project:
    """A past consortium: who took part, in which role, on what, when."""

    id: str
    members: Mapping[str, str]  # organisation id -> role ("coordinator", "participant", ...)
    text: str = ""
    year: int | None = None
    name: str = ""  # acronym or short title, for reasons


@dataclass(frozen=True)
class Query:
    """Free text and/or a lead organisation; the other fields narrow or steer the ranking."""

    text: str = ""
    lead_id: str | None = None
    required_kinds: frozenset[str] = frozenset()  # kinds the call requires: boosted, named in reasons
    countries: frozenset[str] = frozenset()  # when set, only organisations from these countries
    competencies: frozenset[str] = frozenset()  # wanted; the lead's own are used when empty
    exclude_ids: frozenset[str] = frozenset()  # e.g. partners already in the consortium
    limit: int = 20


@dataclass(frozen=True)
class Recommendation:
    org_id: str
    score: float  # higher is better; comparable within one query only
    reasons: tuple[str, ...]
    contributions: Mapping[str, float] = field(default_factory=dict)  # feature -> weight x value
