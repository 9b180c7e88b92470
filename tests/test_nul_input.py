"""NUL (U+0000) in any text is a 422 naming the field on both stores (PostgreSQL cannot store it)."""
from __future__ import annotations

import httpx

from services.registry.app import create_app
from tests.conftest import Store, auth_headers


async def test_nul_in_body_query_or_path_is_a_422_naming_the_field(store: Store) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(db=store.db)),
                                 base_url="http://registry.test", headers=auth_headers()) as http:
        body = await http.post("/v1/organisations", json={"legal_name": "IBA\x00", "kind": "company", "country": "BE",
                                                          "keywords": ["ok", "bad\x00"]})
        query = await http.get("/v1/organisations", params={"q": "a\x00"})
        path = await http.get("/v1/organisations/%00")
    assert [e["field"] for e in body.json()["errors"]] == ["body.legal_name", "body.keywords.1"], body.text
    assert (query.status_code, query.json()["errors"][0]["field"]) == (422, "query.q")
    assert (path.status_code, path.json()["errors"][0]["field"]) == (422, "path.organisation_id")
    assert body.headers["content-type"] == "application/problem+json"
