"""The matchmaking recommender engine: no HTTP, no database; the service and the evaluation feed it.

    index = OrganisationIndex()                       # TF-IDF text model by default
    index.upsert(Organisation(id="org-1", kind="hospital", country="BE", description="..."))
    index.add_project(Project(id="p-1", members={"org-1": "coordinator", "org-2": "participant"}))
    index.add_tie("org-1", "org-3", TieKind.connection)
    Recommender(index).recommend(Query(text="PET-MRI for dementia", lead_id="org-1"))
"""
from .index import OrganisationIndex
from .model import Organisation, Project, Query, Recommendation, TieKind
from .scoring import DEFAULT_WEIGHTS, FEATURES, Recommender
from .text import TextModel, TfidfTextModel

__all__ = [
    "DEFAULT_WEIGHTS",
    "FEATURES",
    "Organisation",
    "OrganisationIndex",
    "Project",
    "Query",
    "Recommendation",
    "Recommender",
    "TextModel",
    "TfidfTextModel",
    "TieKind",
]
