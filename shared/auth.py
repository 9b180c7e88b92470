"""Who is calling: signed bearer tokens (JWT, HS256), the principal they carry, and route policies.

Roles. `platform_admin` (everything), `cluster_manager` (one cluster: the `cluster` claim),
`member` (a representative of one organisation, the `organisation` claim, in one cluster),
`partner_cluster` (another cluster's system, identified by its `cluster` claim), and anonymous
(no credentials: only what is public).

Tokens. Claims `sub`, `roles`, `cluster`, `organisation`, `scopes`, `iss`, `iat`, `exp`; the
header's `kid` names the key. Settings hold several keys (`CLUSTERHUB_AUTH_SIGNING_KEYS`): the
first signs, every one verifies, so keys rotate without a moment when valid tokens fail. The
algorithm is pinned to HS256 on verification: a token cannot choose `none` or another algorithm.

Policies. Every route declares who may call it with `allow(...)` (deny by default: a route
without one is a failing row in tests/test_authorisation_matrix.py). The policy answers 401
without credentials and 403 for a role that is not allowed; which records the caller may see
or change (the tenant checks) is decided next to the data, in each service's `access.py`.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from shared.errors import Forbidden, Unauthorized
from shared.settings import CommonSettings

__all__ = ["ANONYMOUS", "CLUSTER_MANAGER", "MEMBER", "PARTNER_CLUSTER", "PLATFORM_ADMIN", "ROLES", "Anyone",
           "Principal", "Tokens", "allow", "authenticate", "check_claims", "tokens_of"]

PLATFORM_ADMIN = "platform_admin"
CLUSTER_MANAGER = "cluster_manager"
MEMBER = "member"
PARTNER_CLUSTER = "partner_cluster"
ROLES = (PLATFORM_ADMIN, CLUSTER_MANAGER, MEMBER, PARTNER_CLUSTER)
ANONYMOUS = "anonymous"  # in `allow(...)`: callers without credentials too
ALGORITHM = "HS256"
LEEWAY_SECONDS = 30  # clocks of the issuing and the verifying machine may differ a little
# Verified tokens kept by their exact text (a client sends the same one on every request): a hit
# costs a dict lookup where decoding and checking the HMAC cost ~40 µs. Bounded, oldest out first.
VERIFIED_CACHE_SIZE = 4096
# Ids from claims reach SQL (LIKE over JSON lists), logs and URLs: plain ids only, no wildcards.
_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")
_SUBJECT = re.compile(r"^[^\s\x00-\x1f]{1,200}$")
_SCOPE = re.compile(r"^[A-Za-z0-9:._-]{1,100}$")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller; `ANONYMOUS_PRINCIPAL` when no credentials came."""

    subject: str
    roles: frozenset[str] = frozenset()
    cluster: str | None = None
    organisation: str | None = None
    scopes: frozenset[str] = frozenset()
    # The bearer token itself, forwarded when a service asks another on the caller's behalf.
    token: str | None = field(default=None, repr=False, compare=False)

    @property
    def anonymous(self) -> bool:
        return not self.roles

    @property
    def is_admin(self) -> bool:
        return PLATFORM_ADMIN in self.roles

    def manages(self, cluster_id: str | None) -> bool:
        """A platform admin, or a manager of this cluster."""
        return self.is_admin or (CLUSTER_MANAGER in self.roles and cluster_id is not None
                                 and self.cluster == cluster_id)

    def represents(self, organisation_id: str | None) -> bool:
        """A member acting for this organisation."""
        return MEMBER in self.roles and organisation_id is not None and self.organisation == organisation_id

    @property
    def managed_cluster(self) -> str | None:
        return self.cluster if CLUSTER_MANAGER in self.roles else None

    @property
    def member_organisation(self) -> str | None:
        return self.organisation if MEMBER in self.roles else None

    @property
    def member_cluster(self) -> str | None:
        return self.cluster if MEMBER in self.roles else None

    def acting_as(self, roles: Iterable[str]) -> Principal:
        """Only the roles a route allows count in its tenant checks (a manager who is also a member
        archives nothing as a member)."""
        return replace(self, roles=self.roles & frozenset(roles))


ANONYMOUS_PRINCIPAL = Principal(ANONYMOUS)


def check_claims(roles: Iterable[str], cluster: str | None, organisation: str | None) -> list[str]:
    """What is wrong with this combination of roles, cluster and organisation (empty: nothing)."""
    roles = list(roles)
    problems = [f"unknown role {role!r}" for role in roles if role not in ROLES]
    if not roles:
        problems.append("at least one role")
    if any(role in roles for role in (CLUSTER_MANAGER, MEMBER, PARTNER_CLUSTER)) and not cluster:
        problems.append("cluster managers, members and partner clusters need a cluster")
    if MEMBER in roles and not organisation:
        problems.append("members need an organisation")
    for name, value in (("cluster", cluster), ("organisation", organisation)):
        if value is not None and not _ID.match(value):
            problems.append(f"{name} is not an id")
    return problems


class Tokens:
    """Issues and verifies bearer tokens with the configured keys."""

    def __init__(self, keys: dict[str, str], *, issuer: str, ttl: int) -> None:
        if not keys:
            raise ValueError("no signing key")
        self.keys = keys
        self.signing_kid = next(iter(keys))
        self.issuer = issuer
        self.ttl = ttl
        # token -> (principal, time after which it must be verified again: its exp plus the leeway).
        # A token's signature, claims and key cannot change: only time can invalidate it, and the
        # keys do not change within one Tokens (rotation builds a new one from new settings).
        self._verified: dict[str, tuple[Principal, float]] = {}

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> Tokens:
        return cls(settings.signing_keys, issuer=settings.auth_issuer, ttl=settings.auth_token_ttl)

    def issue(self, *, subject: str, roles: Iterable[str], cluster: str | None = None,
              organisation: str | None = None, scopes: Iterable[str] = (), expires_in: int | None = None,
              now: float | None = None) -> str:
        roles, scopes = sorted(set(roles)), sorted(set(scopes))
        problems = check_claims(roles, cluster, organisation)
        if not _SUBJECT.match(subject):
            problems.append("subject must be 1-200 characters without spaces")
        problems += [f"scope {scope!r} is not a plain word" for scope in scopes if not _SCOPE.match(scope)]
        if problems:
            raise ValueError("; ".join(problems))
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {"sub": subject, "roles": roles, "scopes": scopes, "iss": self.issuer,
                                  "iat": issued, "exp": issued + (expires_in if expires_in is not None else self.ttl)}
        if cluster:
            claims["cluster"] = cluster
        if organisation:
            claims["organisation"] = organisation
        return jwt.encode(claims, self.keys[self.signing_kid], algorithm=ALGORITHM,
                          headers={"kid": self.signing_kid})

    def verify(self, token: str) -> Principal:
        """The token's principal; `Unauthorized` (invalid_token) for anything forged, expired or malformed."""
        cached = self._verified.get(token)
        if cached is not None and time.time() <= cached[1]:
            return cached[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            try:  # dicts keep insertion order: the first key is the oldest
                del self._verified[next(iter(self._verified))]
            except (StopIteration, KeyError, RuntimeError):
                pass  # another thread changed the dict meanwhile: it stays bounded all the same
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthorized("the token is signed with an unknown key", error="invalid_token")
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=self.issuer, leeway=LEEWAY_SECONDS,
                                options={"require": ["sub", "iss", "iat", "exp"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", error="invalid_token") from None
        except jwt.PyJWTError:
            raise Unauthorized("the token is not valid", error="invalid_token") from None
        roles, scopes = claims.get("roles"), claims.get("scopes", [])
        cluster, organisation, subject = claims.get("cluster"), claims.get("organisation"), claims["sub"]
        if (not isinstance(roles, list) or not isinstance(scopes, list)
                or not all(isinstance(value, str) for value in (*roles, *scopes))
                or not isinstance(subject, str) or not _SUBJECT.match(subject)
                or not all(value is None or isinstance(value, str) for value in (cluster, organisation))
                or check_claims(roles, cluster, organisation)):
            raise Unauthorized("the token's claims are not valid", error="invalid_token")
        principal = Principal(subject, frozenset(roles), cluster, organisation, frozenset(scopes), token=token)
        return principal, float(claims["exp"]) + LEEWAY_SECONDS


# --------------------------------------------------------------------------------------------
# Dependencies

# Declared for the OpenAPI document ("Authorize" in /docs); the header is read below.
_bearer = HTTPBearer(auto_error=False, description="A token from `POST /v1/auth/token` or `clusterhub tokens create`")


def tokens_of(request: Request) -> Tokens:
    """The app's token issuer and verifier, made from its settings on first use."""
    tokens: Tokens | None = getattr(request.app.state, "tokens", None)
    if tokens is None:
        tokens = request.app.state.tokens = Tokens.from_settings(request.app.state.settings)
    return tokens


# The dependencies here are `async def` although they never await: FastAPI runs a plain `def`
# dependency in a worker thread, a hop that costs more than the work itself on every request.


async def authenticate(request: Request, _: Annotated[Any, Depends(_bearer)] = None) -> Principal:
    """The caller: anonymous without an Authorization header, else the bearer token's principal."""
    scheme, _sep, token = request.headers.get("authorization", "").partition(" ")
    # Other schemes are not ours to judge (the token endpoint reads Basic client credentials).
    if scheme.lower() != "bearer":
        return ANONYMOUS_PRINCIPAL
    token = token.strip()
    if not token:
        raise Unauthorized("send `Authorization: Bearer <token>`", error="invalid_request")
    principal = request.state.principal = tokens_of(request).verify(token)  # named in the access log
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def allow(*roles: str) -> Any:
    """The route's policy: which roles may call it (platform admins always may); `ANONYMOUS` makes it
    public. The principal it gives counts only those roles."""
    unknown = set(roles) - {*ROLES, ANONYMOUS}
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    allowed = frozenset(roles) | {PLATFORM_ADMIN}

    async def policy(principal: CurrentPrincipal) -> Principal:
        if principal.anonymous:
            if ANONYMOUS in allowed:
                return principal
            raise Unauthorized("this needs a bearer token")
        if not principal.roles & allowed:
            needed = ", ".join(sorted(allowed - {ANONYMOUS}))
            raise Forbidden(f"this needs one of the roles: {needed}")
        return principal.acting_as(allowed)

    policy.roles = allowed  # type: ignore[attr-defined]  # read by the authorisation matrix test
    return Depends(policy)


Anyone = Annotated[Principal, allow(ANONYMOUS, *ROLES)]
