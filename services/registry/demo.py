"""Demo data (`clusterhub seed demo`): the seven clusters of the AMI-4EUROPE and BioWin/Medicen
material, with a few hundred plausible members so that every endpoint has something to show.

Generation is deterministic (`random.Random(2026)`, uuid5 ids from names), so a reseeded store
holds the same organisations under the same ids.
"""
from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select

from services.registry import domain
from services.registry.importer import fee_category
from services.registry.models import (
    ClusterCreate,
    ConnectionCreate,
    ContactCreate,
    MembershipActivate,
    MembershipCreate,
    OrganisationCreate,
    WorkingGroupCreate,
    WorkingGroupJoin,
)
from services.registry.projections import organisations
from services.registry.vocabulary import (
    COMPETENCY_LABELS,
    ClusterLegalForm,
    CompanySize,
    Competency,
    ConnectionKind,
    FeeCategory,
    OrganisationKind,
    StakeholderRole,
    ValueChainStage,
)
from shared.db import Database
from shared.eventlog import EventLog, Metadata
from shared.text import name_key, words

DEMO_NAMESPACE = uuid.UUID("5b0f3c1e-6a57-4c1b-9d1e-2f0a7f6c2026")
SEED = 2026


def demo_id(kind: str, key: str) -> str:
    """Stable id for a demo record: the same key gives the same id on every reseed."""
    return str(uuid.uuid5(DEMO_NAMESPACE, f"{kind}:{key}"))


# --------------------------------------------------------------------------------------------
# The clusters: names, places and NUTS regions as in the AMI-4EUROPE and BioWin/Medicen material;
# legal forms, focus and fees are plausible demo values, not the clusters' own figures.


@dataclass(frozen=True)
class DemoCluster:
    name: str
    acronym: str
    country: str
    nuts_region: str
    region_name: str
    legal_form: ClusterLegalForm
    website: str
    description: str
    focus: tuple[Competency, ...]
    fees: dict[FeeCategory, int]  # yearly membership fee in EUR by category


CLUSTERS: tuple[DemoCluster, ...] = (
    DemoCluster(
        "BioWin", "BioWin", "BE", "BE3", "Wallonia", ClusterLegalForm.non_profit_association,
        "https://www.biowin.org",
        "Health cluster of Wallonia: biotechnology, medical devices, imaging and digital health, "
        "from academic research to industrial production.",
        (Competency.biotechnology, Competency.medical_devices, Competency.molecular_imaging,
         Competency.radiopharmaceuticals, Competency.proton_therapy, Competency.cell_and_gene_therapy),
        {FeeCategory.research_institution: 750, FeeCategory.sme: 500, FeeCategory.large_company: 3000,
         FeeCategory.other: 300},
    ),
    DemoCluster(
        "Medicen Paris Region", "Medicen", "FR", "FR10", "Île-de-France", ClusterLegalForm.non_profit_association,
        "https://www.medicen.org",
        "Competitiveness cluster for health innovation in Île-de-France: imaging, diagnostics, "
        "digital health and therapeutic innovation.",
        (Competency.mri, Competency.image_analysis_ai, Competency.in_vitro_diagnostics,
         Competency.digital_health, Competency.drug_discovery, Competency.nanomedicine),
        {FeeCategory.research_institution: 1000, FeeCategory.sme: 600, FeeCategory.large_company: 5000,
         FeeCategory.other: 400},
    ),
    DemoCluster(
        "IMAGO-MOL", "IMAGO-MOL", "RO", "RO21", "Nord-Est", ClusterLegalForm.non_profit_association,
        "https://www.imago-mol.ro",
        "Regional cluster for molecular and structural imaging in North-East Romania, gathering "
        "the Iași university hospitals, universities and imaging companies.",
        (Competency.molecular_imaging, Competency.pet, Competency.ct, Competency.radiopharmaceuticals,
         Competency.pacs, Competency.telemedicine),
        {FeeCategory.research_institution: 250, FeeCategory.sme: 200, FeeCategory.large_company: 1000,
         FeeCategory.other: 100},
    ),
    DemoCluster(
        "Madrid Network", "MN", "ES", "ES30", "Comunidad de Madrid", ClusterLegalForm.non_profit_association,
        "https://www.madridnetwork.org",
        "Network of Madrid's clusters and science parks; its health cluster links hospitals, "
        "universities and medical technology companies of the region.",
        (Competency.medical_devices, Competency.clinical_trials, Competency.e_health_records,
         Competency.image_analysis_ai, Competency.biotechnology),
        {FeeCategory.research_institution: 800, FeeCategory.sme: 450, FeeCategory.large_company: 2500,
         FeeCategory.other: 300},
    ),
    DemoCluster(
        "BioRegioN", "BioRegioN", "DE", "DE9", "Niedersachsen", ClusterLegalForm.state_initiative,
        "https://www.bioregion.de",
        "Life-science initiative of Lower Saxony (Hannover, Braunschweig, Göttingen): "
        "biomedicine, medical imaging, biomaterials and implants.",
        (Competency.biomaterials, Competency.implants, Competency.mri, Competency.biotechnology,
         Competency.optical_imaging),
        {FeeCategory.research_institution: 0, FeeCategory.sme: 0, FeeCategory.large_company: 0,
         FeeCategory.other: 0},
    ),
    DemoCluster(
        "Pharmapolis Debrecen", "Pharmapolis", "HU", "HU32", "Észak-Alföld", ClusterLegalForm.limited_company,
        "https://www.pharmapolis.hu",
        "Pharmaceutical and health-industry cluster around the University of Debrecen: drug "
        "development, clinical trials and nuclear medicine.",
        (Competency.drug_discovery, Competency.clinical_trials, Competency.pet, Competency.radiopharmaceuticals,
         Competency.biotechnology),
        {FeeCategory.research_institution: 300, FeeCategory.sme: 250, FeeCategory.large_company: 1200,
         FeeCategory.other: 150},
    ),
    DemoCluster(
        "FILAS", "FILAS", "IT", "ITI4", "Lazio", ClusterLegalForm.public_body,
        "https://www.filas.it",
        "Regional innovation agency of Lazio supporting the life-science and biomedical "
        "technology district around Rome.",
        (Competency.medical_devices, Competency.radiotherapy, Competency.biotechnology,
         Competency.in_vitro_diagnostics, Competency.digital_health),
        {FeeCategory.research_institution: 500, FeeCategory.sme: 300, FeeCategory.large_company: 2000,
         FeeCategory.other: 200},
    ),
)


# --------------------------------------------------------------------------------------------
# Name material per country


@dataclass(frozen=True)
class Locale:
    cities: tuple[tuple[str, str], ...]  # (city, NUTS code)
    universities: tuple[str, ...]
    hospitals: tuple[str, ...]  # patterns with {city} / {saint}
    saints: tuple[str, ...]
    institutes: tuple[str, ...]  # patterns with {topic} / {city}
    topics: tuple[str, ...]
    company_roots: tuple[str, ...]
    company_words: tuple[str, ...]
    legal_forms_sme: tuple[str, ...]
    legal_forms_large: tuple[str, ...]
    authorities: tuple[str, ...]
    funders: tuple[str, ...]
    associations: tuple[str, ...]
    patient_groups: tuple[str, ...]
    platforms: tuple[str, ...]
    partnerships: tuple[str, ...]  # patterns with {topic} / {city}
    services: tuple[str, ...]  # service-provider name words
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    vat_prefix: str
    vat_digits: int
    phone_code: str
    elision: bool = False  # French: "de imagerie" is written "d'imagerie"


# Generic company name stems, shared across languages (as real medtech start-ups do).
STEMS = ("Neuro", "Cardio", "Onco", "Bio", "Medi", "Radi", "Nano", "Gen", "Cell", "Osteo", "Derma",
         "Vita", "Quanti", "Spectra", "Lumi", "Theragen", "Immuno", "Pharma", "Sono", "Ortho", "Pulmo")
TAILS = ("Vision", "Scan", "Tech", "Logic", "Sense", "Med", "Lab", "Cure", "Gene", "Wave", "Tope",
         "Print", "Path", "Metrics", "Bionics", "Systems", "Dx", "Therapeutics", "Imaging", "Care")

LOCALES: dict[str, Locale] = {
    "BE": Locale(
        cities=(("Liège", "BE33"), ("Namur", "BE35"), ("Charleroi", "BE32"), ("Mons", "BE32"),
                ("Louvain-la-Neuve", "BE31"), ("Gosselies", "BE32"), ("Wavre", "BE31"), ("Seraing", "BE33"),
                ("Gembloux", "BE35"), ("Tournai", "BE32"), ("Arlon", "BE34")),
        universities=("Université de Liège", "Université catholique de Louvain", "Université de Mons",
                      "Université de Namur", "Université libre de Bruxelles — Campus de Gosselies"),
        hospitals=("Clinique Saint-{saint}", "Centre Hospitalier Universitaire de {city}",
                   "Grand Hôpital de {city}", "Centre Hospitalier Régional de {city}"),
        saints=("Luc", "Joseph", "Pierre", "Élisabeth", "Vincent", "Nicolas", "Michel"),
        institutes=("Institut de {topic} de {city}", "Centre de recherche en {topic}",
                    "Laboratoire de {topic} de Wallonie"),
        topics=("imagerie moléculaire", "biomatériaux", "thérapie cellulaire", "radiochimie",
                "génomique", "santé numérique", "dispositifs médicaux"),
        company_roots=("Wallonie", "Meuse", "Sambre", "Ardenne", "Condroz", "Hesbaye"),
        company_words=("Imagerie", "Biotech", "Diagnostics", "Santé", "Implants", "Radiopharma"),
        legal_forms_sme=("SA", "SRL", "SPRL"), legal_forms_large=("SA",),
        authorities=("Service public de Wallonie — Économie", "Agence wallonne de l'Innovation",
                     "Ville de {city}"),
        funders=("Wallonie Entreprendre", "Fonds d'investissement {city} Santé", "Invest {city} Capital"),
        associations=("Association des PME de santé de {city}", "Société belge de radiologie — section wallonne"),
        patient_groups=("Ligue des patients de {city}", "Association wallonne des diabétiques"),
        platforms=("Plateforme d'imagerie préclinique de {city}", "Plateforme de bioproduction de {city}"),
        partnerships=("Centre d'excellence en {topic}", "Partenariat {city} {topic}"),
        services=("Conseil réglementaire", "Services cliniques", "Ingénierie biomédicale"),
        first_names=("Marie", "Julien", "Sophie", "Thomas", "Camille", "Nicolas", "Élise", "François",
                     "Aurélie", "Benoît", "Chloé", "Grégoire"),
        last_names=("Dupont", "Lambert", "Martin", "Dubois", "Leclercq", "Renard", "Jacobs", "Mertens",
                    "Lejeune", "Collignon", "Delvaux", "Hermans"),
        vat_prefix="BE0", vat_digits=9, phone_code="32", elision=True,
    ),
    "FR": Locale(
        cities=(("Paris", "FR101"), ("Évry-Courcouronnes", "FR104"), ("Villejuif", "FR107"), ("Saclay", "FR104"),
                ("Créteil", "FR107"), ("Boulogne-Billancourt", "FR105"), ("Versailles", "FR103"),
                ("Orsay", "FR104"), ("Saint-Denis", "FR106"), ("Nanterre", "FR105"), ("Cergy", "FR108")),
        universities=("Université Paris Cité", "Sorbonne Université", "Université Paris-Saclay",
                      "Université Paris-Est Créteil", "Université de Versailles Saint-Quentin-en-Yvelines"),
        hospitals=("Hôpital Saint-{saint}", "Centre Hospitalier de {city}", "Clinique {saint} de {city}",
                   "Hôpital privé de {city}"),
        saints=("Louis", "Antoine", "Joseph", "Camille", "Jacques", "Anne", "Germain"),
        institutes=("Institut de {topic} de {city}", "Centre de recherche en {topic} de {city}",
                    "Laboratoire de {topic} d'Île-de-France"),
        topics=("imagerie biomédicale", "oncologie", "neurosciences", "intelligence artificielle en santé",
                "nanomédecine", "diagnostic in vitro", "thérapie génique"),
        company_roots=("Seine", "Francilienne", "Lutèce", "Saclay", "Marne", "Vexin"),
        company_words=("Imagerie", "Diagnostics", "Santé", "Médical", "Thérapeutique", "Biologie"),
        legal_forms_sme=("SAS", "SARL", "SA"), legal_forms_large=("SA", "SAS"),
        authorities=("Région Île-de-France — Direction de la santé", "Ville de {city}",
                     "Agence régionale de santé de {city}"),
        funders=("Paris Santé Capital", "Fonds d'amorçage {city} Innovation", "Banque régionale de {city}"),
        associations=("Association des industries de santé de {city}", "Société francilienne d'imagerie médicale"),
        patient_groups=("Association des patients de {city}", "France Cœur Île-de-France"),
        platforms=("Plateforme d'imagerie du petit animal de {city}", "Plateforme de génomique de {city}"),
        partnerships=("Institut hospitalo-universitaire de {city}", "Consortium {topic} {city}"),
        services=("Conseil réglementaire", "Services cliniques", "Ingénierie biomédicale"),
        first_names=("Claire", "Antoine", "Léa", "Mathieu", "Inès", "Pierre", "Manon", "Hugo",
                     "Émilie", "Laurent", "Sarah", "Olivier"),
        last_names=("Moreau", "Laurent", "Simon", "Michel", "Lefèvre", "Girard", "Bonnet", "Fournier",
                    "Rousseau", "Garnier", "Faure", "Chevalier"),
        vat_prefix="FR", vat_digits=11, phone_code="33", elision=True,
    ),
    "RO": Locale(
        cities=(("Iași", "RO213"), ("Bacău", "RO211"), ("Suceava", "RO215"), ("Piatra Neamț", "RO214"),
                ("Botoșani", "RO212"), ("Vaslui", "RO216")),
        universities=("Universitatea de Medicină și Farmacie „Grigore T. Popa” Iași",
                      "Universitatea „Alexandru Ioan Cuza” din Iași",
                      "Universitatea Tehnică „Gheorghe Asachi” din Iași",
                      "Universitatea „Ștefan cel Mare” din Suceava", "Universitatea „Vasile Alecsandri” din Bacău"),
        hospitals=("Spitalul Clinic Județean de Urgență {city}", "Spitalul Sfântul {saint} {city}",
                   "Institutul Regional de Oncologie {city}", "Spitalul Municipal {city}"),
        saints=("Spiridon", "Ioan", "Nicolae", "Dumitru", "Gheorghe", "Maria"),
        institutes=("Institutul de {topic} {city}", "Centrul de Cercetare în {topic} {city}"),
        topics=("Imagistică Moleculară", "Biomateriale", "Medicină Nucleară", "Bioinginerie", "Oncologie",
                "Telemedicină"),
        company_roots=("Moldova", "Carpați", "Prut", "Siret", "Ceahlău", "Bistrița"),
        company_words=("Imagistică", "Medical", "Diagnostic", "Biotehnologie", "Sănătate"),
        legal_forms_sme=("SRL",), legal_forms_large=("SA",),
        authorities=("Agenția pentru Dezvoltare Regională Nord-Est", "Consiliul Județean {city}",
                     "Primăria Municipiului {city}"),
        funders=("Fondul Regional de Investiții {city}", "Banca de Dezvoltare {city}"),
        associations=("Asociația Medicilor Radiologi {city}", "Asociația Firmelor de Tehnologie Medicală {city}"),
        patient_groups=("Asociația Pacienților Oncologici {city}", "Asociația Pacienților Diabetici {city}"),
        platforms=("Platforma de Imagistică Preclinică {city}", "Centrul de Transfer Tehnologic {city}"),
        partnerships=("Parteneriatul Public-Privat {topic} {city}", "Consorțiul {topic} {city}"),
        services=("Consultanță Medicală", "Servicii Clinice", "Inginerie Biomedicală"),
        first_names=("Andrei", "Ioana", "Mihai", "Elena", "Alexandru", "Maria", "Bogdan", "Ana",
                     "Cristina", "Radu", "Irina", "Ștefan"),
        last_names=("Popescu", "Ionescu", "Popa", "Rusu", "Munteanu", "Ciobanu", "Apostol", "Ursu",
                    "Cojocaru", "Lungu", "Țurcanu", "Moraru"),
        vat_prefix="RO", vat_digits=8, phone_code="40",
    ),
    "ES": Locale(
        cities=(("Madrid", "ES300"), ("Alcalá de Henares", "ES300"), ("Getafe", "ES300"), ("Leganés", "ES300"),
                ("Móstoles", "ES300"), ("Tres Cantos", "ES300"), ("Alcobendas", "ES300"),
                ("Pozuelo de Alarcón", "ES300")),
        universities=("Universidad Complutense de Madrid", "Universidad Autónoma de Madrid",
                      "Universidad Politécnica de Madrid", "Universidad Carlos III de Madrid",
                      "Universidad de Alcalá", "Universidad Rey Juan Carlos"),
        hospitals=("Hospital Universitario {saint}", "Hospital General de {city}", "Clínica {saint} de {city}",
                   "Hospital Universitario de {city}"),
        saints=("San Carlos", "La Paz", "Santa Cristina", "San Rafael", "La Princesa", "Niño Jesús"),
        institutes=("Instituto de {topic} de {city}", "Centro de Investigación en {topic}",
                    "Fundación para la Investigación en {topic}"),
        topics=("Imagen Biomédica", "Bioingeniería", "Oncología", "Salud Digital", "Terapia Celular",
                "Enfermedades Raras"),
        company_roots=("Castilla", "Manzanares", "Guadarrama", "Henares", "Retiro", "Cibeles"),
        company_words=("Diagnóstica", "Médica", "Biotecnología", "Salud", "Imagen", "Implantes"),
        legal_forms_sme=("SL", "SA"), legal_forms_large=("SA",),
        authorities=("Comunidad de Madrid — Consejería de Sanidad", "Ayuntamiento de {city}"),
        funders=("Madrid Capital Salud", "Fondo de Innovación de {city}"),
        associations=("Asociación de Empresas de Tecnología Sanitaria de {city}", "Sociedad Madrileña de Radiología"),
        patient_groups=("Asociación de Pacientes de {city}", "Federación Madrileña de Enfermedades Raras"),
        platforms=("Plataforma de Imagen Preclínica de {city}", "Parque Científico de {city}"),
        partnerships=("Consorcio de {topic} de {city}", "Alianza Público-Privada en {topic}"),
        services=("Consultoría Regulatoria", "Servicios Clínicos", "Ingeniería Biomédica"),
        first_names=("Lucía", "Javier", "Carmen", "Alejandro", "Marta", "Pablo", "Elena", "Sergio",
                     "Laura", "Daniel", "Paula", "Álvaro"),
        last_names=("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
                    "Pérez", "Gómez", "Ruiz", "Díaz", "Muñoz"),
        vat_prefix="ESB", vat_digits=8, phone_code="34",
    ),
    "DE": Locale(
        cities=(("Hannover", "DE92"), ("Braunschweig", "DE91"), ("Göttingen", "DE91"), ("Wolfsburg", "DE91"),
                ("Hildesheim", "DE92"), ("Oldenburg", "DE94"), ("Osnabrück", "DE94"), ("Lüneburg", "DE93")),
        universities=("Medizinische Hochschule Hannover", "Leibniz Universität Hannover",
                      "Georg-August-Universität Göttingen", "Technische Universität Braunschweig",
                      "Carl von Ossietzky Universität Oldenburg"),
        hospitals=("Klinikum {city}", "Städtisches Klinikum {city}", "St. {saint} Krankenhaus {city}",
                   "Evangelisches Krankenhaus {city}"),
        saints=("Bernward", "Josef", "Marien", "Elisabeth", "Vinzenz", "Martin"),
        institutes=("Institut für {topic} {city}", "Zentrum für {topic} {city}", "Fraunhofer-Projektgruppe {topic}"),
        topics=("Biomedizinische Bildgebung", "Biomaterialien", "Regenerative Medizin", "Infektionsforschung",
                "Medizintechnik", "Translationale Onkologie"),
        company_roots=("Hannover", "Leine", "Harz", "Weser", "Niedersachsen", "Heide"),
        company_words=("Medical Imaging", "Medizintechnik", "Biotech", "Diagnostik", "Implantate", "Life Sciences"),
        legal_forms_sme=("GmbH", "UG", "GmbH & Co. KG"), legal_forms_large=("AG", "GmbH"),
        authorities=("Niedersächsisches Ministerium für Wirtschaft", "Wirtschaftsförderung {city}"),
        funders=("NBank Niedersachsen", "{city} Beteiligungsgesellschaft", "Sparkasse {city}"),
        associations=("Verband der Medizintechnik {city} e.V.", "Gesundheitsregion {city} e.V."),
        patient_groups=("Selbsthilfegruppe Herzgesundheit {city}", "Patientenforum {city} e.V."),
        platforms=("Bildgebungsplattform {city}", "Technologiezentrum {city}"),
        partnerships=("Forschungsverbund {topic} {city}", "Innovationsallianz {topic}"),
        services=("Regulatory Consulting", "Klinische Dienste", "Medizintechnik-Engineering"),
        first_names=("Anna", "Lukas", "Julia", "Felix", "Katharina", "Jonas", "Lena", "Maximilian",
                     "Sabine", "Tobias", "Miriam", "Jürgen"),
        last_names=("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
                    "Hoffmann", "Schäfer", "Koch", "Krüger"),
        vat_prefix="DE", vat_digits=9, phone_code="49",
    ),
    "HU": Locale(
        cities=(("Debrecen", "HU321"), ("Nyíregyháza", "HU323"), ("Szolnok", "HU322"),
                ("Hajdúszoboszló", "HU321"), ("Kisvárda", "HU323")),
        universities=("Debreceni Egyetem", "Nyíregyházi Egyetem", "Debreceni Református Hittudományi Egyetem"),
        hospitals=("Szent {saint} Kórház", "{city} Megyei Kórház", "Kenézy Gyula Egyetemi Kórház",
                   "{city} Városi Rendelőintézet"),
        saints=("István", "László", "Erzsébet", "Margit", "Imre", "János"),
        institutes=("{topic} Kutatóintézet {city}", "{topic} Kutatóközpont"),
        topics=("Nukleáris Medicina", "Molekuláris Képalkotó", "Gyógyszerkutató", "Biotechnológiai",
                "Klinikai Vizsgálati"),
        company_roots=("Alföld", "Hortobágy", "Tisza", "Hajdú", "Nyírség", "Cívis"),
        company_words=("Orvostechnika", "Gyógyszer", "Diagnosztika", "Biotech", "Egészség"),
        legal_forms_sme=("Kft.",), legal_forms_large=("Zrt.", "Nyrt."),
        authorities=("Hajdú-Bihar Vármegyei Önkormányzat", "{city} Megyei Jogú Város Önkormányzata"),
        funders=("Alföldi Kockázati Tőkealap", "{city} Fejlesztési Alap"),
        associations=("Magyar Gyógyszeripari Egyesület {city}", "Észak-alföldi Orvostechnikai Egyesület"),
        patient_groups=("{city} Betegszervezet", "Magyar Diabetes Betegegyesület {city}"),
        platforms=("{city} Tudományos Park", "Klinikai Kutatási Platform {city}"),
        partnerships=("{topic} Nemzeti Laboratórium", "{city} Egészségipari Konzorcium"),
        services=("Klinikai Szolgáltató", "Orvostechnikai Tanácsadó", "Minőségügyi Szolgáltató"),
        first_names=("Zsófia", "Gábor", "Katalin", "László", "Eszter", "Péter", "Anna", "Balázs",
                     "Réka", "Tamás", "Judit", "Zoltán"),
        last_names=("Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Kiss", "Molnár", "Németh",
                    "Farkas", "Balogh", "Papp"),
        vat_prefix="HU", vat_digits=8, phone_code="36",
    ),
    "IT": Locale(
        cities=(("Roma", "ITI43"), ("Pomezia", "ITI43"), ("Latina", "ITI44"), ("Frosinone", "ITI45"),
                ("Viterbo", "ITI41"), ("Rieti", "ITI42"), ("Tivoli", "ITI43")),
        universities=("Sapienza Università di Roma", "Università degli Studi di Roma Tor Vergata",
                      "Università Campus Bio-Medico di Roma", "Università degli Studi Roma Tre",
                      "Università degli Studi della Tuscia"),
        hospitals=("Ospedale San {saint}", "Policlinico di {city}", "Azienda Ospedaliera {saint} di {city}",
                   "Casa di Cura {saint}"),
        saints=("Giovanni", "Camillo", "Filippo Neri", "Andrea", "Pietro", "Raffaele"),
        institutes=("Istituto di {topic} di {city}", "Centro di Ricerca in {topic}",
                    "Laboratorio di {topic} del Lazio"),
        topics=("Imaging Biomedico", "Radioterapia", "Biomateriali", "Oncologia", "Bioinformatica",
                "Medicina Rigenerativa"),
        company_roots=("Tevere", "Lazio", "Ciociaria", "Sabina", "Tuscia", "Aniene"),
        company_words=("Biomedica", "Diagnostica", "Medicale", "Biotech", "Salute", "Imaging"),
        legal_forms_sme=("S.r.l.", "S.p.A."), legal_forms_large=("S.p.A.",),
        authorities=("Regione Lazio — Direzione Salute", "Comune di {city}"),
        funders=("Lazio Innova Venture", "Fondo Salute {city}"),
        associations=("Associazione Imprese Biomedicali di {city}", "Società Laziale di Radiologia"),
        patient_groups=("Associazione Pazienti di {city}", "Associazione Italiana Malati Oncologici {city}"),
        platforms=("Piattaforma di Imaging Preclinico di {city}", "Tecnopolo di {city}"),
        partnerships=("Distretto Tecnologico di {topic}", "Consorzio {topic} di {city}"),
        services=("Consulenza Regolatoria", "Servizi Clinici", "Ingegneria Biomedica"),
        first_names=("Giulia", "Marco", "Francesca", "Luca", "Chiara", "Alessandro", "Sara", "Matteo",
                     "Valentina", "Davide", "Elena", "Stefano"),
        last_names=("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
                    "Marino", "Greco", "Bruno", "Gallo"),
        vat_prefix="IT", vat_digits=11, phone_code="39",
    ),
}


# --------------------------------------------------------------------------------------------
# Generation


# Share of each kind among a cluster's members (more SMEs, as in every cluster's member list).
KIND_WEIGHTS: dict[OrganisationKind, int] = {
    OrganisationKind.company: 26,
    OrganisationKind.research_institute: 5,
    OrganisationKind.university: 3,
    OrganisationKind.hospital: 5,
    OrganisationKind.service_provider: 3,
    OrganisationKind.financial_actor: 2,
    OrganisationKind.association: 2,
    OrganisationKind.patient_organisation: 2,
    OrganisationKind.technology_platform: 2,
    OrganisationKind.regional_authority: 1,
    OrganisationKind.public_private_partnership: 1,
}

R = StakeholderRole
ROLES_BY_KIND: dict[OrganisationKind, tuple[tuple[StakeholderRole, ...], tuple[StakeholderRole, ...]]] = {
    # (always, sometimes)
    OrganisationKind.company: ((R.manufacturer_oem,), (R.service_provider, R.opinion_leader)),
    OrganisationKind.research_institute: ((R.research_centre, R.researcher), (R.technology_platform, R.opinion_leader)),
    OrganisationKind.university: ((R.academic_centre, R.researcher), (R.opinion_leader, R.technology_platform)),
    OrganisationKind.hospital: ((R.hospital, R.end_user), (R.health_delivery_system_manager, R.opinion_leader,
                                                           R.intermediate_user)),
    OrganisationKind.service_provider: ((R.service_provider,), (R.technology_assessment_agency, R.intermediate_user)),
    OrganisationKind.financial_actor: ((R.financial_private_actor,), (R.financial_public_actor,)),
    OrganisationKind.association: ((R.association,), (R.scientific_society,)),
    OrganisationKind.patient_organisation: ((R.patient_advocate,), (R.end_user,)),
    OrganisationKind.technology_platform: ((R.technology_platform,), (R.service_provider, R.research_centre)),
    OrganisationKind.regional_authority: ((R.regional_authority,), (R.financial_public_actor,)),
    OrganisationKind.public_private_partnership: ((R.public_private_partnership,), (R.joint_technology_initiative,)),
}

S = ValueChainStage
STAGE_ORDER = list(ValueChainStage)
STAGE_SPAN_BY_KIND: dict[OrganisationKind, tuple[ValueChainStage, ValueChainStage] | None] = {
    OrganisationKind.company: (S.applied_research, S.distribution),
    OrganisationKind.research_institute: (S.basic_research, S.clinical_validation),
    OrganisationKind.university: (S.basic_research, S.development),
    OrganisationKind.hospital: (S.clinical_validation, S.clinical_use),
    OrganisationKind.service_provider: (S.development, S.distribution),
    OrganisationKind.technology_platform: (S.applied_research, S.clinical_validation),
    OrganisationKind.public_private_partnership: (S.applied_research, S.clinical_validation),
    OrganisationKind.financial_actor: None,
    OrganisationKind.association: None,
    OrganisationKind.patient_organisation: (S.clinical_use, S.clinical_use),
    OrganisationKind.regional_authority: None,
}

KEYWORDS = ("theranostics", "point-of-care", "wearables", "3D printing", "deep learning", "dosimetry",
            "biobank", "organ-on-chip", "remote monitoring", "companion diagnostics", "bone substitutes",
            "GMP production", "cyclotron", "radiomics", "HL7 FHIR", "clinical decision support",
            "microfluidics", "tissue engineering", "CE marking", "MDR compliance", "health economics",
            "preclinical imaging", "rare diseases", "oncology", "cardiology", "neurology")

KIND_PHRASES: dict[OrganisationKind, str] = {
    OrganisationKind.company: "Company",
    OrganisationKind.research_institute: "Research institute",
    OrganisationKind.university: "University",
    OrganisationKind.hospital: "Hospital",
    OrganisationKind.service_provider: "Service provider",
    OrganisationKind.financial_actor: "Investor",
    OrganisationKind.association: "Professional association",
    OrganisationKind.patient_organisation: "Patient organisation",
    OrganisationKind.technology_platform: "Technology platform",
    OrganisationKind.regional_authority: "Public authority",
    OrganisationKind.public_private_partnership: "Public-private partnership",
}

POSITIONS: dict[OrganisationKind, tuple[str, ...]] = {
    OrganisationKind.company: ("CEO", "CTO", "Business developer", "Head of R&D", "Regulatory affairs manager"),
    OrganisationKind.research_institute: ("Director", "Principal investigator", "Technology transfer officer"),
    OrganisationKind.university: ("Technology transfer officer", "Professor", "Research valorisation manager"),
    OrganisationKind.hospital: ("Head of radiology", "Innovation manager", "Clinical research coordinator"),
}
DEFAULT_POSITIONS = ("Director", "Project manager", "Innovation manager")

WORKING_GROUPS: tuple[tuple[str, str, tuple[Competency, ...]], ...] = (
    ("Connected Health", "Telemedicine, remote monitoring and interoperable health records.",
     (Competency.digital_health, Competency.telemedicine, Competency.e_health_records, Competency.pacs)),
    ("Biomaterials and implants", "Biocompatible materials, bone substitutes and active implants.",
     (Competency.biomaterials, Competency.implants, Competency.nanomedicine)),
    ("Medical devices and imaging", "Imaging systems and medical devices from prototype to CE marking.",
     (Competency.medical_devices, Competency.mri, Competency.ct, Competency.ultrasound, Competency.x_ray,
      Competency.optical_imaging)),
    ("Molecular imaging and radiopharmaceuticals", "Tracers, cyclotrons and hybrid PET-MRI studies.",
     (Competency.molecular_imaging, Competency.pet, Competency.spect, Competency.radiopharmaceuticals,
      Competency.hybrid_pet_mri, Competency.contrast_agents)),
    ("Clinical trials and market access", "Trial design, regulatory affairs and reimbursement.",
     (Competency.clinical_trials, Competency.regulatory_affairs, Competency.drug_discovery)),
    ("AI in diagnostics", "Image analysis, radiomics and in-vitro diagnostics with machine learning.",
     (Competency.image_analysis_ai, Competency.in_vitro_diagnostics)),
    ("Biotech and advanced therapies", "Cell and gene therapies, bioproduction and drug discovery.",
     (Competency.biotechnology, Competency.cell_and_gene_therapy, Competency.drug_discovery)),
    ("Radiation oncology", "Radiotherapy, proton therapy and dosimetry.",
     (Competency.radiotherapy, Competency.proton_therapy)),
)
WORKING_GROUPS_PER_CLUSTER = 3
MAX_WORKING_GROUP_MEMBERS = 12
# BioWin and Medicen have a joint-membership agreement: some members of one join the other.
JOINT_CLUSTERS = ("BioWin", "Medicen")
JOINT_MEMBERS = 6

SCIENTIFIC_KINDS = frozenset({
    OrganisationKind.company, OrganisationKind.research_institute, OrganisationKind.university,
    OrganisationKind.hospital, OrganisationKind.technology_platform, OrganisationKind.service_provider,
    OrganisationKind.public_private_partnership,
})


@dataclass
class DemoOrganisation:
    id: str
    data: dict[str, Any]  # OrganisationCreate fields
    clusters: list[str]  # acronyms of the clusters it is a member of
    contacts: list[dict[str, Any]]
    city: str


@dataclass
class DemoData:
    clusters: list[tuple[str, DemoCluster]]  # (id, cluster)
    organisations: list[DemoOrganisation]
    connections: list[dict[str, Any]]  # ConnectionCreate fields plus "id"
    working_groups: list[dict[str, Any]]  # id, cluster_id, name, description, members [(org id, role)]


def cluster_id(cluster: DemoCluster) -> str:
    return demo_id("cluster", cluster.acronym)


def generate_demo(organisations_per_cluster: int = 50, *, seed: int = SEED) -> DemoData:
    """Build the demo records without touching a store: the same arguments give the same data."""
    rng = random.Random(seed)
    used_names: set[str] = set()
    used_codes: set[str] = set()
    organisations: list[DemoOrganisation] = []
    by_cluster: dict[str, list[DemoOrganisation]] = {}
    for cluster in CLUSTERS:
        members = [_organisation(rng, cluster, kind, used_names, used_codes)
                   for kind in _kinds(organisations_per_cluster)]
        by_cluster[cluster.acronym] = members
        organisations.extend(members)
    for left, right in (JOINT_CLUSTERS, JOINT_CLUSTERS[::-1]):
        joiners = [o for o in by_cluster[left] if o.clusters == [left] and o.data["kind"] in SCIENTIFIC_KINDS]
        for organisation in rng.sample(joiners, min(JOINT_MEMBERS, len(joiners))):
            organisation.clusters.append(right)
            by_cluster[right].append(organisation)
    clusters = [(cluster_id(c), c) for c in CLUSTERS]
    return DemoData(clusters, organisations, _connections(rng, by_cluster), _working_groups(rng, by_cluster))


def _kinds(count: int) -> list[OrganisationKind]:
    total = sum(KIND_WEIGHTS.values())
    kinds: list[OrganisationKind] = []
    for kind, weight in KIND_WEIGHTS.items():
        if kind is not OrganisationKind.company:
            kinds += [kind] * max(1 if count >= len(KIND_WEIGHTS) else 0, round(weight * count / total))
    kinds = kinds[: max(0, count - 1)]
    return [OrganisationKind.company] * (count - len(kinds)) + kinds


def _organisation(rng: random.Random, cluster: DemoCluster, kind: OrganisationKind,
                  used_names: set[str], used_codes: set[str]) -> DemoOrganisation:
    locale = LOCALES[cluster.country]
    size = None
    if kind is OrganisationKind.company:
        size = CompanySize.large if rng.random() < 0.15 else CompanySize.sme
    name, short_name, city, nuts = _unused_name(rng, locale, cluster.country, kind, size, used_names)
    if name is None:  # no university name left: a research institute instead
        kind, size = OrganisationKind.research_institute, None
        name, short_name, city, nuts = _unused_name(rng, locale, cluster.country, kind, size, used_names)
    if name is None:
        raise RuntimeError(f"demo name material for {cluster.country} {kind.value} ran out")
    used_names.add(f"{cluster.country}:{name_key(name)}")

    always, sometimes = ROLES_BY_KIND[kind]
    roles = list(always) + [r for r in sometimes if rng.random() < 0.35]
    span = STAGE_SPAN_BY_KIND[kind]
    stages: list[ValueChainStage] = []
    if span is not None:
        first, last = STAGE_ORDER.index(span[0]), STAGE_ORDER.index(span[1])
        start = rng.randint(first, last)
        stages = STAGE_ORDER[start: rng.randint(start, min(last, start + 3)) + 1]
    if kind in SCIENTIFIC_KINDS:
        competencies = rng.sample(cluster.focus, rng.randint(1, 3))
        if rng.random() < 0.4:
            competencies.append(rng.choice(list(Competency)))
    else:
        competencies = rng.sample(cluster.focus, rng.randint(0, 1))
    keywords = rng.sample(KEYWORDS, rng.randint(0, 3))
    domain = _domain(name)
    labels = [_in_sentence(COMPETENCY_LABELS[c]) for c in dict.fromkeys(competencies)]
    what = KIND_PHRASES[kind] if size is not CompanySize.sme else "SME"
    description = f"{what} in {city}" + (f" working on {', '.join(labels)}." if labels else ".")

    data: dict[str, Any] = {
        "legal_name": name,
        "kind": kind.value,
        "company_size": size.value if size else None,
        "roles": [r.value for r in roles],
        "stages": [s.value for s in stages],
        "competencies": [c.value for c in dict.fromkeys(competencies)],
        "keywords": keywords,
        "country": cluster.country,
        "nuts_region": nuts,
        "website": f"https://www.{domain}",
        "description": description,
        "short_name": short_name,
        "pic": _unique_code(rng, used_codes, "", 9, first="9") if rng.random() < 0.4 else None,
        "vat": (_unique_code(rng, used_codes, locale.vat_prefix, locale.vat_digits)
                if kind in (OrganisationKind.company, OrganisationKind.service_provider) and rng.random() < 0.7
                else None),
    }
    organisation_id = demo_id("organisation", f"{cluster.country}:{name_key(name)}")
    contacts = [_contact(rng, locale, kind, domain) for _ in range(rng.randint(1, 2))]
    return DemoOrganisation(organisation_id, {k: v for k, v in data.items() if v not in (None, [])},
                            [cluster.acronym], contacts, city)


def _unused_name(rng: random.Random, locale: Locale, country: str, kind: OrganisationKind,
                 size: CompanySize | None, used_names: set[str]) -> tuple[Any, Any, str, str]:
    if kind is OrganisationKind.university:
        # In the listed order, so that the best-known universities come first.
        for name in locale.universities:
            if f"{country}:{name_key(name)}" not in used_names:
                city, nuts = next((c for c in locale.cities if c[0] in name), locale.cities[0])
                return name, None, city, nuts
        return None, None, *locale.cities[0]
    for _attempt in range(60):
        city, nuts = rng.choice(locale.cities)
        name, short_name = _name(rng, locale, kind, size, city)
        if f"{country}:{name_key(name)}" not in used_names:
            return name, short_name, city, nuts
    return None, None, city, nuts


def _name(rng: random.Random, locale: Locale, kind: OrganisationKind, size: CompanySize | None,
          city: str) -> tuple[str, str | None]:
    """A legal name in the country's language, and a short name where one would be used."""
    fill = {"city": city, "saint": rng.choice(locale.saints), "topic": rng.choice(locale.topics)}
    K = OrganisationKind
    if kind is K.company:
        legal = rng.choice(locale.legal_forms_large if size is CompanySize.large else locale.legal_forms_sme)
        pattern = rng.random()
        if pattern < 0.5:
            brand = rng.choice(STEMS) + rng.choice(TAILS)
            return f"{brand} {legal}", brand
        words_ = rng.choice(locale.company_words)
        base = f"{rng.choice(locale.company_roots)} {words_}" if pattern < 0.8 else f"{city} {words_}"
        return f"{base} {legal}", None
    if kind is K.service_provider:
        brand = rng.choice(STEMS) + rng.choice(TAILS)
        return f"{brand} {rng.choice(locale.services)} {rng.choice(locale.legal_forms_sme)}", brand
    patterns = {
        K.hospital: locale.hospitals, K.research_institute: locale.institutes,
        K.regional_authority: locale.authorities, K.financial_actor: locale.funders,
        K.association: locale.associations, K.patient_organisation: locale.patient_groups,
        K.technology_platform: locale.platforms, K.public_private_partnership: locale.partnerships,
    }[kind]
    name = rng.choice(patterns).format(**fill)
    if locale.elision:
        name = _ELISION.sub(r"d'\1", name)
    capitals = [w[0] for w in name.replace("-", " ").split() if w[:1].isupper()]
    return name, "".join(capitals) if 3 <= len(capitals) <= 6 else None


# French elision: "Institut de imagerie" -> "Institut d'imagerie", "de Arlon" -> "d'Arlon".
_ELISION = re.compile(r"\bde ([aeiouyéèêîôAEIOUÉÈÎ])")
# Words left out of generated web domains.
_DOMAIN_SKIP = frozenset("""de di du da la le les des del din der den des das für fur of and e et y i
s p r l d a sa srl sprl sas sarl sl spa gmbh ug ag kg co kft zrt nyrt""".split())


def _domain(name: str) -> str:
    kept = [w for w in words(name) if w not in _DOMAIN_SKIP]
    return "-".join(kept[:3]) + ".example"


def _in_sentence(label: str) -> str:
    return label if label[:2].isupper() else label[0].lower() + label[1:]


def _unique_code(rng: random.Random, used: set[str], prefix: str, digits: int, *, first: str = "") -> str:
    while True:
        code = prefix + first + "".join(str(rng.randint(0, 9)) for _ in range(digits - len(first)))
        if code not in used:
            used.add(code)
            return code


def _contact(rng: random.Random, locale: Locale, kind: OrganisationKind, domain: str) -> dict[str, Any]:
    first, last = rng.choice(locale.first_names), rng.choice(locale.last_names)
    local = ".".join("".join(words(part)) for part in (first, last))
    digits = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(7))
    return {
        "name": f"{first} {last}",
        "email": f"{local}@{domain}",
        "phone": f"+{locale.phone_code} {digits[:2]} {digits[2:5]} {digits[5:]}",
        "position": rng.choice(POSITIONS.get(kind, DEFAULT_POSITIONS)),
    }


def _connections(rng: random.Random, by_cluster: dict[str, list[DemoOrganisation]]) -> list[dict[str, Any]]:
    K = OrganisationKind
    academic = (K.university, K.research_institute)
    seen: set[tuple[str, str]] = set()
    connections: list[dict[str, Any]] = []

    def add(source: DemoOrganisation, target: DemoOrganisation, kind: ConnectionKind, text: str) -> None:
        pair = (min(source.id, target.id), max(source.id, target.id))
        if source.id == target.id or pair in seen:
            return
        seen.add(pair)
        year = rng.randint(2012, 2025)
        connections.append({
            "id": demo_id("connection", f"{source.id}:{target.id}:{kind.value}"),
            "source_id": source.id, "target_id": target.id, "kind": kind.value, "description": text,
            "since": f"{year}-{rng.randint(1, 12):02d}-01",
        })

    for members in by_cluster.values():
        companies = [o for o in members if o.data["kind"] == K.company]
        labs = [o for o in members if o.data["kind"] in academic]
        hospitals = [o for o in members if o.data["kind"] == K.hospital]
        for company in companies:
            roll = rng.random()
            if roll < 0.2 and labs:
                add(company, rng.choice(labs), ConnectionKind.spin_off_of, "University spin-off")
            elif roll < 0.5 and hospitals:
                add(company, rng.choice(hospitals), ConnectionKind.supplier_of, "Supplies equipment and services")
            elif roll < 0.8 and labs:
                add(company, rng.choice(labs), ConnectionKind.co_project, "Joint research project")
            else:
                add(company, rng.choice(members), ConnectionKind.partner_of, "Commercial partnership")
        for hospital in hospitals:
            if labs:
                add(hospital, rng.choice(labs), ConnectionKind.co_project, "Clinical research collaboration")
    # A few cross-border projects, as interregional calls fund them.
    clusters = list(by_cluster.values())
    for _ in range(len(clusters) * 3):
        left, right = rng.sample(clusters, 2)
        add(rng.choice(left), rng.choice(right), ConnectionKind.co_project, "Interregional project")
    return connections


def _working_groups(rng: random.Random, by_cluster: dict[str, list[DemoOrganisation]]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for cluster in CLUSTERS:
        focus = set(cluster.focus)
        ranked = sorted(WORKING_GROUPS, key=lambda g: -len(focus.intersection(g[2])))
        for name, description, topics in ranked[:WORKING_GROUPS_PER_CLUSTER]:
            wanted = {t.value for t in topics}
            interested = [o for o in by_cluster[cluster.acronym] if wanted.intersection(o.data.get("competencies", []))]
            chosen = rng.sample(interested, min(rng.randint(5, MAX_WORKING_GROUP_MEMBERS), len(interested)))
            groups.append({
                "id": demo_id("working-group", f"{cluster.acronym}:{name}"),
                "cluster_id": cluster_id(cluster),
                "name": name,
                "description": description,
                "members": [(o.id, "lead" if i == 0 else "member") for i, o in enumerate(chosen)],
            })
    return groups


# --------------------------------------------------------------------------------------------
# Seeding

SEED_METADATA = Metadata(actor="system:demo-seed", service="registry")
BATCH = 400  # commands per write transaction: progress moves, and no lock is held for long


def seed_demo(db: Database, log: EventLog, *, progress: Callable[[int, int], None] | None = None,
              organisations_per_cluster: int = 50, metadata: Metadata = SEED_METADATA) -> dict[str, Any]:
    """Load the demo data into a store without organisations (else do nothing); return the counts."""
    with db.reading() as conn:
        existing = conn.execute(select(func.count()).select_from(organisations)).scalar_one()
    if existing:
        return {"skipped": True, "organisations": existing}
    data = generate_demo(organisations_per_cluster)
    steps = _commands(data, metadata)
    counts: dict[str, Any] = {}
    for start in range(0, len(steps), BATCH):
        with db.writing() as conn:
            for what, command in steps[start:start + BATCH]:
                command(conn, log)
                counts[what] = counts.get(what, 0) + 1
        if progress:
            progress(min(start + BATCH, len(steps)), len(steps))
    return counts


Command = Callable[[Connection, EventLog], Any]


def _commands(data: DemoData, metadata: Metadata) -> list[tuple[str, Command]]:
    """Every write of the demo, in an order where each one finds what it refers to."""
    clusters = dict(data.clusters)
    by_acronym = {c.acronym: cid for cid, c in data.clusters}
    steps: list[tuple[str, Command]] = []
    for cid, cluster in data.clusters:
        create = ClusterCreate(name=cluster.name, acronym=cluster.acronym, country=cluster.country,
                               nuts_region=cluster.nuts_region, legal_form=cluster.legal_form,
                               website=cluster.website, description=cluster.description,
                               thematic_focus=", ".join(COMPETENCY_LABELS[c] for c in cluster.focus))
        steps.append(("clusters", partial(_call, domain.register_cluster, create, metadata, cluster_id=cid)))
    rng = random.Random(SEED + 1)
    period_end = date(domain.today().year, 12, 31)
    for organisation in data.organisations:
        create_org = OrganisationCreate.model_validate(organisation.data)
        steps.append(("organisations", partial(_call, domain.register_organisation, create_org, metadata,
                                               organisation_id=organisation.id)))
        for number, contact in enumerate(organisation.contacts):
            contact_id = demo_id("contact", f"{organisation.id}:{number}")
            steps.append(("contacts", partial(_add_contact, organisation.id, ContactCreate.model_validate(contact),
                                              metadata, contact_id)))
        category = fee_category(create_org.kind, create_org.company_size)
        for acronym in organisation.clusters:
            cid = by_acronym[acronym]
            applied = date(rng.randint(2016, 2024), rng.randint(1, 12), rng.randint(1, 28))
            membership = MembershipCreate(organisation_id=organisation.id, cluster_id=cid, fee_category=category,
                                          yearly_fee=Decimal(clusters[cid].fees[category]), applied_on=applied)
            steps.append(("memberships", partial(
                _join_cluster, membership, applied + timedelta(days=rng.randint(7, 60)), period_end, metadata,
                demo_id("membership", f"{organisation.id}:{cid}"))))
    for connection in data.connections:
        fields = {k: v for k, v in connection.items() if k != "id"}
        steps.append(("connections", partial(_call, domain.record_connection, ConnectionCreate.model_validate(fields),
                                             metadata, connection_id=connection["id"])))
    for group in data.working_groups:
        create_group = WorkingGroupCreate(cluster_id=group["cluster_id"], name=group["name"],
                                          description=group["description"])
        steps.append(("working_groups", partial(_call, domain.form_working_group, create_group, metadata,
                                                working_group_id=group["id"])))
        for organisation_id, role in group["members"]:
            steps.append(("working_group_members", partial(
                _join_group, group["id"], WorkingGroupJoin(organisation_id=organisation_id, role=role), metadata)))
    return steps


def _call(handler: Callable[..., Any], data: Any, metadata: Metadata, conn: Connection, log: EventLog,
          **ids: str) -> Any:
    return handler(conn, log, data, metadata, **ids)


def _add_contact(organisation_id: str, data: ContactCreate, metadata: Metadata, contact_id: str,
                 conn: Connection, log: EventLog) -> Any:
    return domain.add_contact(conn, log, organisation_id, data, metadata, contact_id=contact_id)


def _join_cluster(data: MembershipCreate, activated: date, period_end: date, metadata: Metadata,
                  membership_id: str, conn: Connection, log: EventLog) -> Any:
    domain.apply_membership(conn, log, data, metadata, membership_id=membership_id)
    return domain.activate_membership(conn, log, membership_id, MembershipActivate(on=activated, period_end=period_end),
                                      metadata)


def _join_group(working_group_id: str, data: WorkingGroupJoin, metadata: Metadata,
                conn: Connection, log: EventLog) -> Any:
    return domain.join_working_group(conn, log, working_group_id, data, metadata)
