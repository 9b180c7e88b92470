"""API keys for machine clients, and the token endpoint that trades one for a bearer token.

A key reads `chk_<prefix>_<secret>`: the prefix finds the row, the secret is checked against its
argon2 hash. Only the hash is stored (table `auth_api_keys`, outside the log and not rebuilt from
it); issuing and revoking a key are events in the log (`auth.ApiKeyIssued`, `auth.ApiKeyRevoked`),
which name the key and what it may do, never its secret or hash.

Keys are not accepted as bearer credentials on every request: a client trades its key for a
short-lived token at `POST /v1/auth/token` (OAuth 2.0 client-credentials grant, RFC 6749 §4.4),
so argon2's deliberate cost is paid once per token, not per call.
"""
from __future__ import annotations

import base64
import binascii
import functools
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, ClassVar

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import JSON, Column, Connection, String, Table, insert, select, update

from shared.auth import Anyone, Tokens, check_claims, tokens_of
from shared.db import Database
from shared.errors import Conflict, DomainError, InvalidInput, NotFound
from shared.eventlog import NO_STREAM, DomainEvent, EventLog, Metadata, utc_now_text
from shared.tables import metadata

KEY_PREFIX = "chk"
STREAM_TYPE = "api-key"
# Keys carry 256 random bits, so argon2 guards against a stolen table, not against guessing:
# OWASP's smallest recommended setting (19 MiB, 2 passes) keeps the token endpoint cheap.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)

api_keys = Table(
    "auth_api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_hash", String(200), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("cluster", String(64)),
    Column("organisation", String(64)),
    Column("scopes", JSON, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)


class ApiKeyIssued(DomainEvent):
    event_type: ClassVar[str] = "auth.ApiKeyIssued"

    key_id: str
    prefix: str
    subject: str
    roles: list[str]
    cluster: str | None = None
    organisation: str | None = None
    scopes: list[str] = []


class ApiKeyRevoked(DomainEvent):
    event_type: ClassVar[str] = "auth.ApiKeyRevoked"

    key_id: str
    reason: str | None = None


@dataclass(frozen=True)
class IssuedKey:
    id: str
    key: str  # shown once, to whoever issued it


def issue_api_key(conn: Connection, log: EventLog, *, subject: str, roles: list[str], cluster: str | None = None,
                  organisation: str | None = None, scopes: list[str] | None = None,
                  metadata: Metadata) -> IssuedKey:
    """Record a new key (its event and its hash, in one transaction); the full key is returned only here."""
    problems = check_claims(roles, cluster, organisation)
    if problems:
        raise InvalidInput("; ".join(problems))
    key_id, prefix, secret = str(uuid.uuid4()), secrets.token_hex(6), secrets.token_urlsafe(32)
    event = ApiKeyIssued(key_id=key_id, prefix=prefix, subject=subject, roles=sorted(set(roles)), cluster=cluster,
                         organisation=organisation, scopes=sorted(set(scopes or [])))
    log.append(conn, f"{STREAM_TYPE}-{key_id}", STREAM_TYPE, NO_STREAM, [event], metadata)
    conn.execute(insert(api_keys).values(
        id=key_id, prefix=prefix, secret_hash=_hasher.hash(secret), subject=subject, roles=event.roles,
        cluster=cluster, organisation=organisation, scopes=event.scopes, created_at=utc_now_text()))
    return IssuedKey(key_id, f"{KEY_PREFIX}_{prefix}_{secret}")


def revoke_api_key(conn: Connection, log: EventLog, key_id: str, *, reason: str | None = None,
                   metadata: Metadata) -> None:
    row = conn.execute(select(api_keys.c.revoked_at).where(api_keys.c.id == key_id)).first()
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    if row.revoked_at is not None:
        raise Conflict(f"API key {key_id} is already revoked")
    stream = f"{STREAM_TYPE}-{key_id}"
    log.append(conn, stream, STREAM_TYPE, log.stream_version(conn, stream), [ApiKeyRevoked(key_id=key_id,
                                                                                           reason=reason)], metadata)
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=utc_now_text()))


@functools.cache
def _dummy_hash() -> str:
    """Checked when the prefix matches nothing, so a wrong prefix takes as long as a wrong secret."""
    return _hasher.hash("clusterhub-no-such-key")


def _split(key: str) -> tuple[str, str] | None:
    marker, _, rest = key.partition("_")
    prefix, _, secret = rest.partition("_")
    return (prefix, secret) if marker == KEY_PREFIX and prefix and secret else None


def authenticate_api_key(conn: Connection, client_id: str, key: str) -> dict | None:
    """The key's row when `key` is the live key with id `client_id`; None otherwise (same cost either way)."""
    parts = _split(key)
    row = None
    if parts is not None:
        row = conn.execute(select(api_keys).where(api_keys.c.prefix == parts[0])).mappings().first()
    try:
        _hasher.verify(row["secret_hash"] if row else _dummy_hash(), parts[1] if parts else key)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["id"] != client_id or row["revoked_at"] is not None:
        return None
    return dict(row)


# --------------------------------------------------------------------------------------------
# The token endpoint


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class OAuthError(DomainError):
    """RFC 6749 §5.2 errors: `error` in the body beside the problem fields."""

    status, title, type_slug = 400, "Token request refused", "oauth-error"

    def __init__(self, error: str, detail: str, status: int = 400) -> None:
        super().__init__(detail, error=error, error_description=detail)
        self.status = status
        if status == 401:
            self.headers = {"WWW-Authenticate": 'Basic realm="clusterhub"'}


router = APIRouter(prefix="/v1/auth", tags=["auth"])


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    return (client_id, secret) if sep else None


@router.post("/token", responses={400: {"description": "RFC 6749 error"}, 401: {"description": "Bad client"}})
async def issue_token(
    request: Request,
    _: Anyone,
    grant_type: Annotated[str, Form(max_length=50)],
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=1000, description="Space-separated; a subset of the key's")] = None,
) -> JSONResponse:
    """Trade an API key for a bearer token (OAuth 2.0 client credentials: form fields, or HTTP Basic)."""
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "only grant_type=client_credentials is supported")
    basic = _basic(request)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise OAuthError("invalid_client", "give client_id and client_secret (the API key)", 401)
    db: Database = request.app.state.db
    row = await db.read(lambda conn: authenticate_api_key(conn, client_id, client_secret))
    if row is None:
        raise OAuthError("invalid_client", "unknown, revoked or wrong API key", 401)
    scopes = set(row["scopes"])
    if scope is not None:
        asked = set(scope.split())
        if not asked <= scopes:
            raise OAuthError("invalid_scope", f"the key does not allow: {' '.join(sorted(asked - scopes))}")
        scopes = asked
    tokens: Tokens = tokens_of(request)
    token = await anyio.to_thread.run_sync(lambda: tokens.issue(
        subject=row["subject"], roles=row["roles"], cluster=row["cluster"], organisation=row["organisation"],
        scopes=scopes))
    body = TokenResponse(access_token=token, expires_in=tokens.ttl).model_dump()
    # RFC 6749 §5.1: token responses must not be cached.
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
