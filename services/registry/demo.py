"""Demo data (`clusterhub seed demo`): the seven clusters of the AMI-4EUROPE and BioWin/Medicen
material, with a few hundred plausible members so that every endpoint has something to show.

Generation is deterministic (`random.Random(2026)`, uuid5 ids from names), so a reseeded store
holds the same organisations under the same ids.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from services.registry.vocabulary import (
    ClusterLegalForm,
    CompanySize,
    Competency,
    ConnectionKind,
    FeeCategory,
    OrganisationKind,
    StakeholderRole,
    ValueChainStage,
)
from shared.text import fold, name_key, words

DEMO_NAMESPACE = uuid.UUID("5b0f3c1e-6a57-4c1b-9d1e-2f0a7f6c2026")
SEED = 2026


def demo_id(kind: str, name: str) -> str:
    """Stable id for a demo record: the same name gives the same id on every reseed."""
    return str(uuid.uuid5(DEMO_NAMESPACE, f"{kind}:{name_key(name)}"))


# --------------------------------------------------------------------------------------------
# The clusters (public facts from their own material)


@dataclass(frozen=True)
class DemoCluster:
    name: str
    acronym: str
    country: str
    nuts_region: str
    region_name: str
    legal_form: ClusterLegalForm
    founded: int
    website: str
    description: str
    focus: tuple[Competency, ...]
    fees: dict[FeeCategory, int]  # yearly membership fee in EUR by category


CLUSTERS: tuple[DemoCluster, ...] = (
    DemoCluster(
        "BioWin", "BioWin", "BE", "BE3", "Wallonia", ClusterLegalForm.non_profit_association, 2006,
        "https://www.biowin.org",
        "Health cluster of Wallonia: biotechnology, medical devices, imaging and digital health, "
        "from academic research to industrial production.",
        (Competency.biotechnology, Competency.medical_devices, Competency.molecular_imaging,
         Competency.radiopharmaceuticals, Competency.proton_therapy, Competency.cell_and_gene_therapy),
        {FeeCategory.research_institution: 750, FeeCategory.sme: 500, FeeCategory.large_company: 3000,
         FeeCategory.other: 300},
    ),
    DemoCluster(
        "Medicen Paris Region", "Medicen", "FR", "FR10", "Île-de-France", ClusterLegalForm.non_profit_association, 2005,
        "https://www.medicen.org",
        "Competitiveness cluster for health innovation in Île-de-France: imaging, diagnostics, "
        "digital health and therapeutic innovation.",
        (Competency.mri, Competency.image_analysis_ai, Competency.in_vitro_diagnostics,
         Competency.digital_health, Competency.drug_discovery, Competency.nanomedicine),
        {FeeCategory.research_institution: 1000, FeeCategory.sme: 600, FeeCategory.large_company: 5000,
         FeeCategory.other: 400},
    ),
    DemoCluster(
        "IMAGO-MOL", "IMAGO-MOL", "RO", "RO21", "Nord-Est", ClusterLegalForm.non_profit_association, 2012,
        "https://www.imago-mol.ro",
        "Regional cluster for molecular and structural imaging in North-East Romania, gathering "
        "the Iași university hospitals, universities and imaging companies.",
        (Competency.molecular_imaging, Competency.pet, Competency.ct, Competency.radiopharmaceuticals,
         Competency.pacs, Competency.telemedicine),
        {FeeCategory.research_institution: 250, FeeCategory.sme: 200, FeeCategory.large_company: 1000,
         FeeCategory.other: 100},
    ),
    DemoCluster(
        "Madrid Network", "MN", "ES", "ES30", "Comunidad de Madrid", ClusterLegalForm.non_profit_association, 2007,
        "https://www.madridnetwork.org",
        "Network of Madrid's clusters and science parks; its health cluster links hospitals, "
        "universities and medical technology companies of the region.",
        (Competency.medical_devices, Competency.clinical_trials, Competency.e_health_records,
         Competency.image_analysis_ai, Competency.biotechnology),
        {FeeCategory.research_institution: 800, FeeCategory.sme: 450, FeeCategory.large_company: 2500,
         FeeCategory.other: 300},
    ),
    DemoCluster(
        "BioRegioN", "BioRegioN", "DE", "DE9", "Niedersachsen", ClusterLegalForm.state_initiative, 2003,
        "https://www.bioregion.de",
        "Life-science initiative of Lower Saxony (Hannover, Braunschweig, Göttingen): "
        "biomedicine, medical imaging, biomaterials and implants.",
        (Competency.biomaterials, Competency.implants, Competency.mri, Competency.biotechnology,
         Competency.optical_imaging),
        {FeeCategory.research_institution: 0, FeeCategory.sme: 0, FeeCategory.large_company: 0,
         FeeCategory.other: 0},
    ),
    DemoCluster(
        "Pharmapolis Debrecen", "Pharmapolis", "HU", "HU32", "Észak-Alföld", ClusterLegalForm.limited_company, 2005,
        "https://www.pharmapolis.hu",
        "Pharmaceutical and health-industry cluster around the University of Debrecen: drug "
        "development, clinical trials and nuclear medicine.",
        (Competency.drug_discovery, Competency.clinical_trials, Competency.pet, Competency.radiopharmaceuticals,
         Competency.biotechnology),
        {FeeCategory.research_institution: 300, FeeCategory.sme: 250, FeeCategory.large_company: 1200,
         FeeCategory.other: 150},
    ),
    DemoCluster(
        "FILAS", "FILAS", "IT", "ITI4", "Lazio", ClusterLegalForm.public_body, 1975,
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
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    vat_prefix: str
    vat_digits: int


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
        first_names=("Marie", "Julien", "Sophie", "Thomas", "Camille", "Nicolas", "Élise", "François",
                     "Aurélie", "Benoît", "Chloé", "Grégoire"),
        last_names=("Dupont", "Lambert", "Martin", "Dubois", "Leclercq", "Renard", "Jacobs", "Mertens",
                    "Lejeune", "Collignon", "Delvaux", "Hermans"),
        vat_prefix="BE0", vat_digits=9,
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
        first_names=("Claire", "Antoine", "Léa", "Mathieu", "Inès", "Pierre", "Manon", "Hugo",
                     "Émilie", "Laurent", "Sarah", "Olivier"),
        last_names=("Moreau", "Laurent", "Simon", "Michel", "Lefèvre", "Girard", "Bonnet", "Fournier",
                    "Rousseau", "Garnier", "Faure", "Chevalier"),
        vat_prefix="FR", vat_digits=11,
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
        first_names=("Andrei", "Ioana", "Mihai", "Elena", "Alexandru", "Maria", "Bogdan", "Ana",
                     "Cristina", "Radu", "Irina", "Ștefan"),
        last_names=("Popescu", "Ionescu", "Popa", "Rusu", "Munteanu", "Ciobanu", "Apostol", "Ursu",
                    "Cojocaru", "Lungu", "Țurcanu", "Moraru"),
        vat_prefix="RO", vat_digits=8,
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
        first_names=("Lucía", "Javier", "Carmen", "Alejandro", "Marta", "Pablo", "Elena", "Sergio",
                     "Laura", "Daniel", "Paula", "Álvaro"),
        last_names=("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
                    "Pérez", "Gómez", "Ruiz", "Díaz", "Muñoz"),
        vat_prefix="ESB", vat_digits=8,
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
        first_names=("Anna", "Lukas", "Julia", "Felix", "Katharina", "Jonas", "Lena", "Maximilian",
                     "Sabine", "Tobias", "Miriam", "Jürgen"),
        last_names=("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
                    "Hoffmann", "Schäfer", "Koch", "Krüger"),
        vat_prefix="DE", vat_digits=9,
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
        first_names=("Zsófia", "Gábor", "Katalin", "László", "Eszter", "Péter", "Anna", "Balázs",
                     "Réka", "Tamás", "Judit", "Zoltán"),
        last_names=("Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Kiss", "Molnár", "Németh",
                    "Farkas", "Balogh", "Papp"),
        vat_prefix="HU", vat_digits=8,
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
        institutes=("Istituto di {topic} di {city}", "Centro di Ricerca in {topic}", "Laboratorio di {topic} del Lazio"),
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
        first_names=("Giulia", "Marco", "Francesca", "Luca", "Chiara", "Alessandro", "Sara", "Matteo",
                     "Valentina", "Davide", "Elena", "Stefano"),
        last_names=("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
                    "Marino", "Greco", "Bruno", "Gallo"),
        vat_prefix="IT", vat_digits=11,
    ),
}
