"""Authentication as an attacker tries it (forged, expired, tampered, alg=none tokens; spoofed headers),
key rotation, the production key check, API keys and the token endpoint, the audit log by tenant,
and the command line's tokens and API keys."""
from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app as cli
from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.api_keys import issue_api_key, revoke_api_key
from shared.auth import Tokens
from shared.eventlog import EventLog, Metadata
from shared.settings import DEV_SIGNING_KEY, CommonSettings
from tests.conftest import TEST_SIGNING_KEYS, Store, auth_headers

BIOWIN = {"name": "BioWin", "acronym": "BioWin", "country": "BE", "legal_form": "non_profit_association"}
MEDICEN = {"name": "Medicen", "acronym": "Medicen", "country": "FR", "legal_form": "non_profit_association"}
KID, SECRET = TEST_SIGNING_KEYS.split(":", 1)


@pytest.fixture
async def http(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(RegistrySettings(rate_limit_per_minute=0), db=store.db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "mallory", "roles": ["platform_admin"], "scopes": [], "iss": "clusterhub", "iat": now,
            "exp": now + 600, **overrides}


def refused(response: httpx.Response, error: str | None = "invalid_token") -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer") and (error is None or f'error="{error}"' in challenge), challenge
    return response.json()


async def test_forged_expired_and_malformed_tokens_are_refused(http: httpx.AsyncClient) -> None:
    path = "/v1/audit"
    assert (await http.get(path, headers=auth_headers())).status_code == 200

    forged = jwt.encode(claims(), "another-secret-of-at-least-32-characters!", algorithm="HS256",
                        headers={"kid": KID})
    assert "not valid" in refused(await http.get(path, headers=bearer(forged)))["detail"]
    unknown_kid = jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "stolen"})
    assert "unknown key" in refused(await http.get(path, headers=bearer(unknown_kid)))["detail"]
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": KID})  # type: ignore[arg-type]
    refused(await http.get(path, headers=bearer(unsigned)))
    expired = Tokens({KID: SECRET}, issuer="clusterhub", ttl=60).issue(
        subject="anne", roles=["platform_admin"], now=time.time() - 3600)
    assert refused(await http.get(path, headers=bearer(expired)))["detail"] == "the token has expired"

    # A valid member token whose payload is edited to say platform_admin: the signature no longer matches.
    member = auth_headers("member", cluster="c-1", organisation="o-1")["Authorization"].split()[1]
    header, payload, signature = member.split(".")
    raised = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raised["roles"] = ["platform_admin"]
    edited = base64.urlsafe_b64encode(json.dumps(raised).encode()).decode().rstrip("=")
    refused(await http.get(path, headers=bearer(f"{header}.{edited}.{signature}")))

    # Signed with the right key, but claims the platform does not issue.
    for bad in (claims(iss="elsewhere"), claims(roles=["superuser"]), claims(roles=["member"], cluster="c-1"),
                claims(roles=["cluster_manager"], cluster="%"), claims(roles="platform_admin")):
        refused(await http.get(path, headers=bearer(jwt.encode(bad, SECRET, algorithm="HS256",
                                                                headers={"kid": KID}))))
    refused(await http.get(path, headers=bearer("not.a.token")))
    refused(await http.get(path, headers={"Authorization": "Bearer "}), "invalid_request")
    # No (or no bearer) credentials: a challenge without an error, as RFC 6750 asks.
    assert refused(await http.get(path), None)["status"] == 401
    refused(await http.get(path, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}), None)


async def test_spoofed_identity_headers_change_nothing(http: httpx.AsyncClient) -> None:
    spoofed = {"X-Actor": "admin", "X-Cluster": "biowin", "X-Roles": "platform_admin"}
    assert (await http.post("/v1/clusters", json=BIOWIN, headers=spoofed)).status_code == 401
    member = auth_headers("member", cluster="c-1", organisation="o-1")
    assert (await http.post("/v1/clusters", json=BIOWIN, headers={**member, **spoofed})).status_code == 403


async def test_keys_rotate_without_refusing_valid_tokens(store: Store) -> None:
    old = Tokens({KID: SECRET}, issuer="clusterhub", ttl=600).issue(subject="ops", roles=["platform_admin"])
    rotated = RegistrySettings(auth_signing_keys=f"new:{'n' * 40},{TEST_SIGNING_KEYS}", rate_limit_per_minute=0)
    retired = RegistrySettings(auth_signing_keys=f"new:{'n' * 40}", rate_limit_per_minute=0)
    tokens = Tokens.from_settings(rotated)
    new = tokens.issue(subject="ops", roles=["platform_admin"])
    assert jwt.get_unverified_header(new)["kid"] == "new"
    for settings, expected in ((rotated, (200, 200)), (retired, (401, 200))):
        app = create_app(settings, db=store.db)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            statuses = tuple([(await client.get("/v1/audit", headers=bearer(t))).status_code for t in (old, new)])
        assert statuses == expected


def test_production_refuses_the_development_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLUSTERHUB_AUTH_SIGNING_KEYS")
    with pytest.raises(ValidationError, match="development key"):
        CommonSettings(environment="production")
    with pytest.raises(ValidationError, match="development key"):
        CommonSettings(environment="production", auth_signing_keys=f"new:{'n' * 40},{DEV_SIGNING_KEY}")
    with pytest.raises(ValidationError, match="shorter than 32"):
        CommonSettings(auth_signing_keys="k1:short")
    assert CommonSettings(environment="production", auth_signing_keys=f'["k1:{"s" * 40}"]').signing_keys == {
        "k1": "s" * 40}


# --------------------------------------------------------------------------------------------
# API keys and the token endpoint


async def test_api_key_for_a_token_then_revoked(store: Store, http: httpx.AsyncClient) -> None:
    log = EventLog(store.db.dialect)
    with store.db.writing() as conn:
        key = issue_api_key(conn, log, subject="medicen-system", roles=["cluster_manager"], cluster="c-42",
                            scopes=["audit:read"], metadata=Metadata(actor="ops"))
    form = {"grant_type": "client_credentials", "client_id": key.id, "client_secret": key.key}

    response = await http.post("/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
    decoded = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"], issuer="clusterhub")
    assert (decoded["sub"], decoded["roles"], decoded["cluster"], decoded["scopes"]) == (
        "medicen-system", ["cluster_manager"], "c-42", ["audit:read"])
    assert (await http.get("/v1/audit", headers=bearer(body["access_token"]))).status_code == 200
    basic = base64.b64encode(f"{key.id}:{key.key}".encode()).decode()
    assert (await http.post("/v1/auth/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": f"Basic {basic}"})).status_code == 200

    for wrong in ({**form, "client_secret": key.key[:-2] + "xx"}, {**form, "client_id": "someone-else"},
                  {**form, "client_secret": "chk_000000000000_guess"}, {**form, "client_secret": "guess"}):
        response = await http.post("/v1/auth/token", data=wrong)
        assert (response.status_code, response.json()["error"]) == (401, "invalid_client"), response.text
    response = await http.post("/v1/auth/token", data={**form, "grant_type": "password"})
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")
    response = await http.post("/v1/auth/token", data={**form, "scope": "audit:read admin"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")
    assert (await http.post("/v1/auth/token", data={"client_id": key.id})).status_code == 422

    with store.db.writing() as conn:
        revoke_api_key(conn, log, key.id, reason="leaked", metadata=Metadata(actor="ops"))
    assert (await http.post("/v1/auth/token", data=form)).status_code == 401

    # The log tells who issued and revoked which key, never its secret nor its hash.
    with store.db.reading() as conn:
        rows = conn.exec_driver_sql("SELECT event_type, data FROM events WHERE stream_type = 'api-key' "
                                    "ORDER BY position").all()
        stored_hash = conn.exec_driver_sql("SELECT secret_hash FROM auth_api_keys").scalar_one()
    assert [row.event_type for row in rows] == ["auth.ApiKeyIssued", "auth.ApiKeyRevoked"]
    secret = key.key.rsplit("_", 1)[1]
    assert stored_hash.startswith("$argon2id$") and secret not in stored_hash
    assert not any(secret in row.data or stored_hash in row.data for row in rows)


# --------------------------------------------------------------------------------------------
# The audit log


async def test_audit_shows_a_manager_their_cluster_only(http: httpx.AsyncClient) -> None:
    admin = auth_headers()
    biowin = (await http.post("/v1/clusters", json=BIOWIN, headers=admin)).json()["id"]
    medicen = (await http.post("/v1/clusters", json=MEDICEN, headers=admin)).json()["id"]
    anne = auth_headers("cluster_manager", cluster=biowin, subject="anne@biowin.org")
    marc = auth_headers("cluster_manager", cluster=medicen, subject="marc@medicen.fr")
    for name, who in (("IBA", anne), ("ULiège", anne), ("Guerbet", marc)):
        response = await http.post("/v1/organisations", headers=who,
                                   json={"legal_name": name, "kind": "company", "country": "BE"})
        assert response.status_code == 201, response.text

    def seen(response: httpx.Response) -> list[tuple[str, str]]:
        assert response.status_code == 200, response.text
        return [(e["metadata"]["actor"], e["data"].get("legal_name", "")) for e in response.json()["data"]]

    assert seen(await http.get("/v1/audit", headers=anne)) == [("anne@biowin.org", "IBA"),
                                                               ("anne@biowin.org", "ULiège")]
    assert seen(await http.get("/v1/audit", headers=marc)) == [("marc@medicen.fr", "Guerbet")]
    assert len(seen(await http.get("/v1/audit", headers=admin))) == 5  # two clusters, three organisations
    assert (await http.get("/v1/audit", params={"tenant": medicen}, headers=anne)).status_code == 403
    assert seen(await http.get("/v1/audit", params={"tenant": medicen}, headers=admin)) == [
        ("marc@medicen.fr", "Guerbet")]

    # Filters: actor, event type, stream, time range, and paging by position.
    assert seen(await http.get("/v1/audit", params={"actor": "marc@medicen.fr"}, headers=admin)) == [
        ("marc@medicen.fr", "Guerbet")]
    clusters = await http.get("/v1/audit", params={"event_type": "registry.ClusterRegistered"}, headers=admin)
    assert [e["stream_id"] for e in clusters.json()["data"]] == [f"cluster-{biowin}", f"cluster-{medicen}"]
    assert len(seen(await http.get("/v1/audit", params={"stream": f"cluster-{biowin}"}, headers=admin))) == 1
    assert seen(await http.get("/v1/audit", params={"since": "2100-01-01T00:00:00Z"}, headers=admin)) == []
    assert len(seen(await http.get("/v1/audit", params={"until": "2100-01-01T00:00:00Z"}, headers=admin))) == 5
    first = (await http.get("/v1/audit", params={"limit": 2}, headers=admin)).json()
    rest = (await http.get("/v1/audit", params={"after": first["next_after"], "limit": 10}, headers=admin)).json()
    assert [e["position"] for e in first["data"] + rest["data"]] == [1, 2, 3, 4, 5] and rest["next_after"] is None
    bad = await http.get("/v1/audit", params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                         headers=admin)
    assert [e["field"] for e in bad.json()["errors"]] == ["query.until"]
    member = auth_headers("member", cluster=biowin, organisation="o-1")
    assert (await http.get("/v1/audit", headers=member)).status_code == 403


# --------------------------------------------------------------------------------------------
# The command line


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_cli_mints_tokens_and_manages_api_keys(store: Store) -> None:
    result = invoke("tokens", "create", "--role", "member", "--cluster", "c-1", "--organisation", "o-9",
                    "--subject", "anne@iba.be", "--expires-in", "120")
    assert result.exit_code == 0, result.output
    principal = Tokens.from_settings(CommonSettings()).verify(result.stdout.strip())
    assert (principal.subject, principal.roles, principal.cluster, principal.organisation) == (
        "anne@iba.be", frozenset({"member"}), "c-1", "o-9")
    refused_member = invoke("tokens", "create", "--role", "member", "--cluster", "c-1")
    assert refused_member.exit_code == 1 and "members need an organisation" in str(refused_member.exception)

    url = store.db.url
    created = invoke("--database-url", url, "api-keys", "create", "--role", "partner_cluster", "--cluster", "c-2",
                     "--subject", "medicen-system", "--json")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["client_secret"].startswith("chk_")
    assert invoke("--database-url", url, "api-keys", "revoke", key["client_id"]).exit_code == 0
    again = invoke("--database-url", url, "api-keys", "revoke", key["client_id"])
    assert again.exit_code == 1 and "already revoked" in str(again.exception)
