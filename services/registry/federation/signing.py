"""Webhook signatures: `Clusterhub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

The timestamp is inside the signed text, so it cannot be changed without the secret; the
receiver refuses a timestamp more than `tolerance` seconds from its clock, so a captured delivery
replayed later is refused even though its signature is genuine (and within the window the
receiver's idempotency on the CloudEvent id drops a repeat). Comparison is constant-time. Several
`v1=` values may be sent (while a secret is rotated); one matching is enough.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER = "Clusterhub-Signature"
TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """Why a delivery was refused (said to the sender as 401, without detail beyond this)."""


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secrets_: list[str] | str, header: str | None, body: bytes, *, tolerance: int = TOLERANCE_SECONDS,
           now: float | None = None) -> str:
    """The secret that signed `body`; SignatureError if none did, or the timestamp is stale or missing."""
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("malformed signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance (replayed or clock skew)")
    for secret in [secrets_] if isinstance(secrets_, str) else secrets_:
        expected = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
        # compare_digest on every candidate, so timing tells nothing about which part differed.
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return secret
    raise SignatureError("no signature matches")
