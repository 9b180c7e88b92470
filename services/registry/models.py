"""The registry's API schemas: one family per resource (Create, Update, Public), validated strictly.

Create models are also what CSV rows are validated against. Update models carry only the
fields a client sent (JSON merge: `null` clears an optional field); the domain re-validates the
merged record against the Create model, so cross-field rules hold after every change.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from services.registry.vocabulary import (
    ClusterLegalForm,
    CompanySize,
    Competency,
    ConnectionKind,
    FeeCategory,
    MembershipStatus,
    OrganisationKind,
    StakeholderRole,
    ValueChainStage,
)
from shared.pagination import Page  # noqa: F401  (re-exported: every service's lists page this way)

# ISO 3166-1 alpha-2, plus XK (Kosovo), which EU programmes use though ISO has not assigned it.
COUNTRY_CODES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
VG VI VN VU WF WS YE YT ZA ZM ZW XK
""".split())

# NUTS codes start with the country code, except Greece (EL) and the United Kingdom (UK).
NUTS_COUNTRY_PREFIX = {"GR": "EL", "GB": "UK"}
_NUTS = re.compile(r"^[A-Z]{2}[0-9A-Z]{1,3}$")
_VAT = re.compile(r"^[A-Z]{2}[0-9A-Z]{2,13}$")
_PIC = re.compile(r"^[0-9]{9}$")
_ROR = re.compile(r"^0[a-hj-km-np-tv-z0-9]{6}[0-9]{2}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().\-/]{4,29}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_HTTP_URL = TypeAdapter(HttpUrl)
T = TypeVar("T")
CENT = Decimal("0.01")


def _upper_stripped(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return value


def _nuts(value: str) -> str:
    if not _NUTS.match(value):
        raise ValueError("not a NUTS region code (e.g. BE3, FR10, RO21)")
    return value


def _vat(value: Any) -> Any:
    if isinstance(value, str):
        value = re.sub(r"[\s.\-]", "", value).upper()
        if not _VAT.match(value):
            raise ValueError("not a VAT number with its country prefix (e.g. BE0123456789)")
    return value


def _pic(value: Any) -> Any:
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        value = value.strip()
        if not _PIC.match(value):
            raise ValueError("not an EU participant identification code (9 digits)")
    return value


def _ror(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().lower().removeprefix("https://ror.org/").removeprefix("ror.org/")
        if not _ROR.match(value):
            raise ValueError("not a ROR identifier (e.g. 02495e989 or https://ror.org/02495e989)")
    return value


def _website(value: str) -> str:
    _HTTP_URL.validate_python(value)
    return value


def _phone(value: str) -> str:
    if not _PHONE.match(value):
        raise ValueError("not a phone number (digits, spaces and + ( ) . - / only)")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError("not an ISO 4217 currency code (e.g. EUR)")
    return value


def _unique(values: list[Any]) -> list[Any]:
    """Drop repeats, keep the first spelling and the order (case-insensitive for text)."""
    seen: set[Any] = set()
    kept = []
    for value in values:
        key = value.casefold() if isinstance(value, str) else value
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


Country = Annotated[str, BeforeValidator(_upper_stripped), AfterValidator(_country),
                    Field(description="ISO 3166-1 alpha-2 code", examples=["BE"])]
NutsRegion = Annotated[str, BeforeValidator(_upper_stripped), AfterValidator(_nuts),
                       Field(description="NUTS region code (level 1-3)", examples=["BE3"])]
Website = Annotated[str, Field(max_length=300), AfterValidator(_website)]
Vat = Annotated[str, BeforeValidator(_vat), Field(description="VAT number with country prefix")]
Pic = Annotated[str, BeforeValidator(_pic), Field(description="EU participant identification code")]
RorId = Annotated[str, BeforeValidator(_ror), Field(description="ROR identifier")]
Phone = Annotated[str, Field(max_length=40), AfterValidator(_phone)]
Currency = Annotated[str, BeforeValidator(_upper_stripped), AfterValidator(_currency)]
Keyword = Annotated[str, Field(min_length=1, max_length=60)]
Name = Annotated[str, Field(min_length=1, max_length=300)]
Text = Annotated[str, Field(max_length=5000)]
Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2), AfterValidator(lambda d: d.quantize(CENT))]

Roles = Annotated[list[StakeholderRole], Field(max_length=30), AfterValidator(_unique)]
Stages = Annotated[list[ValueChainStage], Field(max_length=20), AfterValidator(_unique)]
Competencies = Annotated[list[Competency], Field(max_length=50), AfterValidator(_unique)]
Keywords = Annotated[list[Keyword], Field(max_length=30), AfterValidator(_unique)]

STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
READ = ConfigDict(extra="ignore", from_attributes=True)


def check_region_in_country(region: str | None, info: ValidationInfo, country_field: str = "country") -> str | None:
    country = info.data.get(country_field)
    if region is not None and country is not None:
        prefix = NUTS_COUNTRY_PREFIX.get(country, country)
        if not region.startswith(prefix):
            raise ValueError(f"NUTS region {region} is not in country {country} (codes there start with {prefix})")
    return region


class Stamps(BaseModel):
    """What every read model adds: the stream version (the ETag) and when it changed."""

    id: str
    version: int
    created_at: str
    updated_at: str


# --------------------------------------------------------------------------------------------
# Clusters (the tenants)


class ClusterBase(BaseModel):
    model_config = STRICT

    name: Name
    acronym: str = Field(min_length=1, max_length=30)
    country: Country
    nuts_region: NutsRegion | None = None
    thematic_focus: str | None = Field(default=None, max_length=500)
    legal_form: ClusterLegalForm
    website: Website | None = None
    description: Text | None = None

    _region_in_country = field_validator("nuts_region")(check_region_in_country)


class ClusterCreate(ClusterBase):
    pass


class ClusterUpdate(BaseModel):
    model_config = STRICT

    name: Name | None = None
    acronym: str | None = Field(default=None, min_length=1, max_length=30)
    country: Country | None = None
    nuts_region: NutsRegion | None = None
    thematic_focus: str | None = Field(default=None, max_length=500)
    legal_form: ClusterLegalForm | None = None
    website: Website | None = None
    description: Text | None = None


class ClusterPublic(ClusterBase, Stamps):
    model_config = READ

    archived: bool = False


# --------------------------------------------------------------------------------------------
# Organisations


class OrganisationBase(BaseModel):
    model_config = STRICT

    legal_name: Name
    short_name: str | None = Field(default=None, min_length=1, max_length=100)
    kind: OrganisationKind
    company_size: CompanySize | None = Field(default=None, description="Only for companies")
    roles: Roles = []
    stages: Stages = Field(default=[], description="Value-chain stages")
    competencies: Competencies = []
    keywords: Keywords = Field(default=[], description="Free keywords beside the competency list")
    country: Country
    nuts_region: NutsRegion | None = None
    website: Website | None = None
    description: Text | None = None
    vat: Vat | None = None
    pic: Pic | None = None
    ror: RorId | None = None

    @field_validator("company_size")
    @classmethod
    def _size_only_for_companies(cls, size: CompanySize | None, info: ValidationInfo) -> CompanySize | None:
        kind = info.data.get("kind")
        if size is not None and kind is not None and kind != OrganisationKind.company:
            raise ValueError(f"only companies have a size, not a {kind.value}")
        return size

    _region_in_country = field_validator("nuts_region")(check_region_in_country)


class OrganisationCreate(OrganisationBase):
    pass


class OrganisationUpdate(BaseModel):
    model_config = STRICT

    legal_name: Name | None = None
    short_name: str | None = Field(default=None, min_length=1, max_length=100)
    kind: OrganisationKind | None = None
    company_size: CompanySize | None = None
    roles: Roles | None = None
    stages: Stages | None = None
    competencies: Competencies | None = None
    keywords: Keywords | None = None
    country: Country | None = None
    nuts_region: NutsRegion | None = None
    website: Website | None = None
    description: Text | None = None
    vat: Vat | None = None
    pic: Pic | None = None
    ror: RorId | None = None


class OrganisationPublic(OrganisationBase, Stamps):
    model_config = READ

    archived: bool = False


class ArchiveRequest(BaseModel):
    model_config = STRICT

    reason: str | None = Field(default=None, max_length=500)


# --------------------------------------------------------------------------------------------
# Contacts (person data: own stream, own table, erasable later)


class ContactBase(BaseModel):
    model_config = STRICT

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: Phone | None = None
    position: str | None = Field(default=None, max_length=200)


class ContactCreate(ContactBase):
    pass


class ContactUpdate(BaseModel):
    model_config = STRICT

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: Phone | None = None
    position: str | None = Field(default=None, max_length=200)


class Consents(BaseModel):
    """What the person agreed to; `PUT /v1/persons/{id}/consents` records the whole set."""

    model_config = STRICT

    newsletter: bool
    share_profile_with_partner_clusters: bool


class ConsentsPublic(Consents):
    model_config = READ

    recorded_at: str


class ContactPublic(Stamps):
    """Name, e-mail, phone and position read "erased" once the person is erased (GDPR)."""

    model_config = READ

    name: str
    email: str | None = None
    phone: str | None = None
    position: str | None = None
    organisation_id: str
    consents: ConsentsPublic | None = None  # None: never recorded, so nothing was given
    erased: bool = False


# --------------------------------------------------------------------------------------------
# Memberships (organisation <-> cluster)


class MembershipCreate(BaseModel):
    model_config = STRICT

    organisation_id: Uuid
    cluster_id: Uuid
    fee_category: FeeCategory
    yearly_fee: Money
    currency: Currency = "EUR"
    applied_on: date | None = Field(default=None, description="Defaults to today")


class MembershipActivate(BaseModel):
    model_config = STRICT

    on: date | None = Field(default=None, description="Defaults to today")
    period_end: date | None = Field(default=None, description="Defaults to 31 December of the activation year")


class MembershipSuspend(BaseModel):
    model_config = STRICT

    on: date | None = None
    reason: str | None = Field(default=None, max_length=500)


class MembershipRenew(BaseModel):
    model_config = STRICT

    period_end: date | None = Field(default=None, description="Defaults to one year after the current period end")
    yearly_fee: Money | None = Field(default=None, description="New fee from the renewal on; unchanged if absent")


class MembershipEnd(BaseModel):
    model_config = STRICT

    on: date | None = None
    reason: str | None = Field(default=None, max_length=500)


class MembershipPublic(Stamps):
    model_config = READ

    organisation_id: str
    cluster_id: str
    fee_category: FeeCategory
    yearly_fee: Decimal
    currency: str
    status: MembershipStatus
    applied_on: date
    activated_on: date | None = None
    suspended_on: date | None = None
    ended_on: date | None = None
    period_end: date | None = None
    status_reason: str | None = None


# --------------------------------------------------------------------------------------------
# Connections between organisations


class ConnectionCreate(BaseModel):
    model_config = STRICT

    source_id: Uuid = Field(description="The organisation that is partner/supplier/spin-off of the target")
    target_id: Uuid
    kind: ConnectionKind
    description: str | None = Field(default=None, max_length=1000)
    since: date | None = None

    @field_validator("target_id")
    @classmethod
    def _not_itself(cls, target: str, info: ValidationInfo) -> str:
        if target == info.data.get("source_id"):
            raise ValueError("an organisation cannot be connected to itself")
        return target


class ConnectionEnd(BaseModel):
    model_config = STRICT

    on: date | None = None


class ConnectionPublic(Stamps):
    model_config = READ

    source_id: str
    target_id: str
    kind: ConnectionKind
    description: str | None = None
    since: date | None = None
    ended_on: date | None = None
    active: bool


# --------------------------------------------------------------------------------------------
# Thematic working groups


WorkingGroupRole = Literal["lead", "member"]


class WorkingGroupCreate(BaseModel):
    model_config = STRICT

    cluster_id: Uuid
    name: str = Field(min_length=1, max_length=200, examples=["Connected Health"])
    description: Text | None = None


class WorkingGroupJoin(BaseModel):
    model_config = STRICT

    organisation_id: Uuid
    role: WorkingGroupRole = "member"


class WorkingGroupMemberPublic(BaseModel):
    model_config = READ

    organisation_id: str
    role: WorkingGroupRole
    joined_at: str


class WorkingGroupPublic(Stamps):
    model_config = READ

    cluster_id: str
    name: str
    description: str | None = None
    member_count: int = 0
