"""The registry's controlled vocabulary, after the AMI-4EUROPE cluster roadmap (D2.2).

Values are stable lower_snake_case codes (stored in events, filters and CSV files); labels are
what people read. Free keywords complement the competency list; they are not validated here.
"""
from __future__ import annotations

from enum import StrEnum


class OrganisationKind(StrEnum):
    company = "company"
    research_institute = "research_institute"
    university = "university"
    hospital = "hospital"
    regional_authority = "regional_authority"
    financial_actor = "financial_actor"
    association = "association"
    patient_organisation = "patient_organisation"
    technology_platform = "technology_platform"
    public_private_partnership = "public_private_partnership"
    service_provider = "service_provider"


class CompanySize(StrEnum):
    """Only for companies: SME per Recommendation 2003/361/EC, otherwise large."""

    sme = "sme"
    large = "large"


class StakeholderRole(StrEnum):
    # scientific
    end_user = "end_user"
    intermediate_user = "intermediate_user"
    opinion_leader = "opinion_leader"
    hospital = "hospital"
    researcher = "researcher"
    research_centre = "research_centre"
    academic_centre = "academic_centre"
    service_provider = "service_provider"
    manufacturer_oem = "manufacturer_oem"
    scientific_society = "scientific_society"
    technology_platform = "technology_platform"
    joint_technology_initiative = "joint_technology_initiative"
    technology_assessment_agency = "technology_assessment_agency"
    # non-scientific
    regional_authority = "regional_authority"
    financial_public_actor = "financial_public_actor"
    financial_private_actor = "financial_private_actor"
    public_private_partnership = "public_private_partnership"
    association = "association"
    health_delivery_system_manager = "health_delivery_system_manager"
    patient_advocate = "patient_advocate"


SCIENTIFIC_ROLES = frozenset(list(StakeholderRole)[:13])


class ValueChainStage(StrEnum):
    basic_research = "basic_research"
    applied_research = "applied_research"
    development = "development"
    clinical_validation = "clinical_validation"
    regulatory_approval = "regulatory_approval"
    manufacturing = "manufacturing"
    distribution = "distribution"
    clinical_use = "clinical_use"


class Competency(StrEnum):
    mri = "mri"
    pet = "pet"
    ct = "ct"
    spect = "spect"
    ultrasound = "ultrasound"
    optical_imaging = "optical_imaging"
    molecular_imaging = "molecular_imaging"
    hybrid_pet_mri = "hybrid_pet_mri"
    contrast_agents = "contrast_agents"
    nanomedicine = "nanomedicine"
    image_analysis_ai = "image_analysis_ai"
    pacs = "pacs"
    telemedicine = "telemedicine"
    radiotherapy = "radiotherapy"
    proton_therapy = "proton_therapy"
    in_vitro_diagnostics = "in_vitro_diagnostics"
    x_ray = "x_ray"
    radiopharmaceuticals = "radiopharmaceuticals"
    medical_devices = "medical_devices"
    biomaterials = "biomaterials"
    implants = "implants"
    digital_health = "digital_health"
    e_health_records = "e_health_records"
    biotechnology = "biotechnology"
    drug_discovery = "drug_discovery"
    clinical_trials = "clinical_trials"
    regulatory_affairs = "regulatory_affairs"
    cell_and_gene_therapy = "cell_and_gene_therapy"


COMPETENCY_LABELS: dict[Competency, str] = {
    Competency.mri: "MRI",
    Competency.pet: "PET",
    Competency.ct: "CT",
    Competency.spect: "SPECT",
    Competency.ultrasound: "Ultrasound",
    Competency.optical_imaging: "Optical imaging",
    Competency.molecular_imaging: "Molecular imaging",
    Competency.hybrid_pet_mri: "Hybrid PET-MRI",
    Competency.contrast_agents: "Contrast agents",
    Competency.nanomedicine: "Nanomedicine",
    Competency.image_analysis_ai: "Image analysis / AI",
    Competency.pacs: "PACS",
    Competency.telemedicine: "Telemedicine",
    Competency.radiotherapy: "Radiotherapy",
    Competency.proton_therapy: "Proton therapy",
    Competency.in_vitro_diagnostics: "In-vitro diagnostics",
    Competency.x_ray: "X-ray",
    Competency.radiopharmaceuticals: "Radiopharmaceuticals",
    Competency.medical_devices: "Medical devices",
    Competency.biomaterials: "Biomaterials",
    Competency.implants: "Implants",
    Competency.digital_health: "Digital health",
    Competency.e_health_records: "Electronic health records",
    Competency.biotechnology: "Biotechnology",
    Competency.drug_discovery: "Drug discovery",
    Competency.clinical_trials: "Clinical trials",
    Competency.regulatory_affairs: "Regulatory affairs",
    Competency.cell_and_gene_therapy: "Cell and gene therapy",
}


class ClusterLegalForm(StrEnum):
    non_profit_association = "non_profit_association"
    limited_company = "limited_company"
    state_initiative = "state_initiative"
    public_body = "public_body"
    foundation = "foundation"
    other = "other"


class FeeCategory(StrEnum):
    research_institution = "research_institution"
    sme = "sme"
    large_company = "large_company"
    other = "other"


class MembershipStatus(StrEnum):
    applied = "applied"
    active = "active"
    suspended = "suspended"
    ended = "ended"


class ConnectionKind(StrEnum):
    partner_of = "partner_of"
    supplier_of = "supplier_of"
    spin_off_of = "spin_off_of"
    co_project = "co_project"
