"""The matchmaking API schemas: one family per resource (Create, Update, Public), strict on input.

Rules that tie fields together (an R&D partner search names its call; a call's minimum countries
fit its minimum partners) are checked by the domain on the whole record, after every change, so
that a 422 names the field to fix.

The conventions (strict input, pages, stamps, ids, countries, keywords, the competency and
value-chain vocabulary) are the registry's, imported from it as the events service does.
"""
from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from services.registry.models import (
    READ,
    STRICT,
    Competencies,
    Country,
    Keywords,
    NutsRegion,
    Page,
    Stages,
    Stamps,
    Text,
    Uuid,
    Website,
)
from services.registry.vocabulary import OrganisationKind

__all__ = ["Page"]  # re-exported: lists page the registry's way


class OpportunityKind(StrEnum):
    """The Enterprise Europe Network's five profile kinds."""

    business_offer = "business_offer"
    business_request = "business_request"
    technology_offer = "technology_offer"
    technology_request = "technology_request"
    rd_partner_search = "rd_partner_search"  # research & development partner search, for a named call


class Visibility(StrEnum):
    cluster_members = "cluster_members"
    partner_clusters = "partner_clusters"  # shareable with partner clusters
    public = "public"


class OpportunityStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    published = "published"
    expired = "expired"
    closed = "closed"


class InterestStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"


class Programme(StrEnum):
    horizon_europe = "horizon_europe"
    eu4health = "eu4health"
    interreg = "interreg"
    cosme = "cosme"  # now the Single Market Programme's SME pillar
    single_market = "single_market"
    digital_europe = "digital_europe"
    ihi = "ihi"  # Innovative Health Initiative (formerly IMI)
    eic = "eic"
    national = "national"
    regional = "regional"
    other = "other"


SME = "sme"
# A call's required partner kinds: the registry's organisation kinds, plus an SME (a company of that size).
PartnerKind = StrEnum("PartnerKind", {**{k.name: k.value for k in OrganisationKind}, SME: SME})

CallId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}$",
                              examples=["HORIZON-HLTH-2025-DISEASE-03-01"], description="The programme's call id")]
Summary = Annotated[str, Field(min_length=1, max_length=1000)]
Title = Annotated[str, Field(min_length=3, max_length=300)]


def _distinct(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


Countries = Annotated[list[Country], Field(max_length=60), AfterValidator(_distinct)]
Regions = Annotated[list[NutsRegion], Field(max_length=60), AfterValidator(_distinct)]
Kinds = Annotated[list[OrganisationKind], Field(max_length=20), AfterValidator(_distinct)]


# --------------------------------------------------------------------------------------------
# Opportunities


class OpportunityBase(BaseModel):
    model_config = STRICT

    contact_id: Uuid = Field(description="The owner's contact person, revealed to accepted partners")
    cluster_id: Uuid | None = Field(default=None, description="The cluster it is posted in (its reviewer's)")
    kind: OpportunityKind
    title: Title
    summary: Summary
    description: Text | None = None
    keywords: Keywords = []
    competencies: Competencies = []
    stages: Stages = Field(default=[], description="Value-chain stages it is about")
    partner_kinds: Kinds = Field(default=[], description="Kinds of partner sought")
    target_countries: Countries = []
    target_regions: Regions = []
    call_id: CallId | None = Field(default=None, description="The funding call (R&D partner searches need one)")
    deadline: date | None = Field(default=None, description="Last day to answer; at most 12 months are kept")
    visibility: Visibility = Visibility.cluster_members


class OpportunityCreate(OpportunityBase):
    organisation_id: Uuid = Field(description="The member organisation posting it")


class OpportunityUpdate(BaseModel):
    """The fields to change (JSON merge: null clears an optional one); drafts only."""

    model_config = STRICT

    contact_id: Uuid | None = None
    cluster_id: Uuid | None = None
    kind: OpportunityKind | None = None
    title: Title | None = None
    summary: Summary | None = None
    description: Text | None = None
    keywords: Keywords | None = None
    competencies: Competencies | None = None
    stages: Stages | None = None
    partner_kinds: Kinds | None = None
    target_countries: Countries | None = None
    target_regions: Regions | None = None
    call_id: CallId | None = None
    deadline: date | None = None
    visibility: Visibility | None = None


class DuplicateFlag(BaseModel):
    opportunity_id: str
    similarity: float


class OpportunityPublic(OpportunityBase, Stamps):
    model_config = READ

    organisation_id: str
    status: OpportunityStatus
    published_on: date | None = None
    published_by: str | None = None
    expires_on: date | None = Field(default=None, description="Last day it is open once published")
    expired_on: date | None = None
    expiry_reason: str | None = Field(default=None, description="deadline or twelve_months")
    closed_on: date | None = None
    close_reason: str | None = None
    rejection_reason: str | None = None
    duplicate_of: list[DuplicateFlag] = []
    interest_count: int = 0


class RejectRequest(BaseModel):
    model_config = STRICT

    reason: str = Field(min_length=1, max_length=1000)


class RenewRequest(BaseModel):
    model_config = STRICT

    deadline: date | None = Field(default=None, description="A new deadline; without one, 12 more months")


class CloseRequest(BaseModel):
    model_config = STRICT

    reason: str | None = Field(default=None, max_length=1000)


# --------------------------------------------------------------------------------------------
# Expressions of interest


class InterestCreate(BaseModel):
    model_config = STRICT

    organisation_id: Uuid
    contact_id: Uuid
    message: str = Field(min_length=1, max_length=5000)
    contribution: Text | None = Field(default=None, description="What the organisation brings")


class ContactCard(BaseModel):
    organisation_id: str
    contact_id: str


class ContactExchange(BaseModel):
    """Each side's organisation and contact person, once the owner has accepted."""

    owner: ContactCard
    interested: ContactCard


class InterestPublic(Stamps):
    model_config = READ

    opportunity_id: str
    organisation_id: str
    message: str
    contribution: str | None = None
    status: InterestStatus
    decided_at: str | None = None
    decline_reason: str | None = None
    contacts: ContactExchange | None = Field(default=None, description="Only once accepted")


class DeclineRequest(BaseModel):
    model_config = STRICT

    reason: str | None = Field(default=None, max_length=1000)


# --------------------------------------------------------------------------------------------
# Funding calls


class CallBase(BaseModel):
    model_config = STRICT

    programme: Programme
    title: Title
    description: Text | None = None
    url: Website | None = None
    opens_on: date | None = None
    deadline: date
    min_partners: int = Field(default=1, ge=1, le=100, description="Participants, the lead included")
    min_countries: int = Field(default=1, ge=1, le=50, description="Distinct countries, the lead's included")
    required_kinds: list[PartnerKind] = Field(  # type: ignore[valid-type]
        default=[], max_length=20, description="One entry per partner needed: [hospital, sme, sme] asks for two SMEs")
    eligible_countries: Countries = Field(default=[], description="Empty: any country")
    keywords: Keywords = []
    competencies: Competencies = []


class CallCreate(CallBase):
    call_id: CallId


class CallUpdate(BaseModel):
    model_config = STRICT

    programme: Programme | None = None
    title: Title | None = None
    description: Text | None = None
    url: Website | None = None
    opens_on: date | None = None
    deadline: date | None = None
    min_partners: int | None = Field(default=None, ge=1, le=100)
    min_countries: int | None = Field(default=None, ge=1, le=50)
    required_kinds: list[PartnerKind] | None = Field(default=None, max_length=20)  # type: ignore[valid-type]
    eligible_countries: Countries | None = None
    keywords: Keywords | None = None
    competencies: Competencies | None = None


class CallPublic(CallBase, Stamps):
    model_config = READ


# --------------------------------------------------------------------------------------------
# Recommendations, consortia, meeting suggestions


class PartnerRecommendation(BaseModel):
    organisation_id: str
    name: str
    kind: str | None
    country: str | None
    score: float = Field(description="Higher is better; comparable within one answer only")
    reasons: list[str]


class Recommendations(BaseModel):
    lead_organisation_id: str | None
    data: list[PartnerRecommendation]


class ProposalCreate(BaseModel):
    model_config = STRICT

    call_id: CallId
    lead_organisation_id: Uuid
    size: int | None = Field(default=None, ge=1, le=30,
                             description="Partners besides the lead; default: what the call's minimum needs")
    text: Text | None = Field(default=None, description="What the project is about, beside the call's text")
    partner_ids: list[Uuid] = Field(default=[], max_length=30, description="Partners already committed")
    exclude_ids: list[Uuid] = Field(default=[], max_length=200, description="Organisations not to propose")


class ConsortiumMember(BaseModel):
    organisation_id: str
    name: str
    kind: str | None
    country: str | None
    role: str = Field(description="lead, committed or proposed")
    score: float | None = None
    satisfies: list[str] = Field(description="The call's rules this member helps meet")
    reasons: list[str] = []


class RuleCheck(BaseModel):
    rule: str
    satisfied: bool
    detail: str


class ConsortiumProposal(BaseModel):
    call_id: str
    lead_organisation_id: str
    members: list[ConsortiumMember]
    rules: list[RuleCheck]
    missing: list[str] = Field(description="What the consortium still lacks, in words")
    eligible: bool


class MeetingSuggestion(BaseModel):
    participant_id: str
    name: str
    organisation_id: str
    organisation_name: str
    score: float
    reasons: list[str]


class MeetingSuggestions(BaseModel):
    event_id: str
    participant_id: str
    data: list[MeetingSuggestion]
