"""Registry API tests run against the real app over a real store (SQLite file and PostgreSQL)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.registry.app import create_app
from tests.conftest import Store, auth_headers

BIOWIN = {"name": "BioWin", "acronym": "BioWin", "country": "BE", "nuts_region": "BE3",
          "thematic_focus": "Biotechnology and health technologies in Wallonia",
          "legal_form": "non_profit_association", "website": "https://www.biowin.org"}
MEDICEN = {"name": "Medicen Paris Region", "acronym": "Medicen", "country": "FR", "nuts_region": "FR10",
           "legal_form": "non_profit_association"}
IBA = {"legal_name": "Ion Beam Applications SA", "short_name": "IBA", "kind": "company", "company_size": "large",
       "roles": ["manufacturer_oem"], "stages": ["development", "manufacturing"],
       "competencies": ["proton_therapy", "radiopharmaceuticals"], "keywords": ["cyclotron"],
       "country": "BE", "nuts_region": "BE31", "website": "https://www.iba-worldwide.com",
       "description": "Proton therapy systems and particle accelerators.", "vat": "BE0428750985"}
ULIEGE = {"legal_name": "Université de Liège", "short_name": "ULiège", "kind": "university",
          "roles": ["academic_centre", "researcher"], "stages": ["basic_research", "applied_research"],
          "competencies": ["pet", "molecular_imaging"], "keywords": ["cyclotron research centre"],
          "country": "BE", "nuts_region": "BE33", "pic": "999975526"}
GUERBET = {"legal_name": "Guerbet", "kind": "company", "company_size": "large", "roles": ["manufacturer_oem"],
           "stages": ["manufacturing", "distribution"], "competencies": ["contrast_agents", "mri"],
           "country": "FR", "nuts_region": "FR10", "description": "Contrast agents for medical imaging."}


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(db=store.db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                 headers=auth_headers()) as http:
        yield http


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def fields_named(response: httpx.Response) -> list[str]:
    """The fields a problem+json 422 names."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]
