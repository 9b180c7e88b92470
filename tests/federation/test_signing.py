"""The webhook signature scheme: genuine deliveries pass; forged, tampered and replayed ones do not."""
from __future__ import annotations

import time

import pytest

from services.registry.federation import signing

SECRET = "whsec_test-secret-0123456789abcdefghij"
BODY = b'{"specversion":"1.0","id":"7-0","source":"https://hub.biowin.test","type":"eu.clusterhub.events.EventShared"}'


def test_a_genuine_delivery_verifies() -> None:
    assert signing.verify([SECRET], signing.sign(SECRET, BODY), BODY) == SECRET


def test_the_right_secret_among_several_is_found() -> None:
    header = signing.sign(SECRET, BODY)
    assert signing.verify(["whsec_other-secret-0123456789abcdefgh", SECRET], header, BODY) == SECRET


def test_a_signature_made_with_another_secret_is_refused() -> None:
    forged = signing.sign("whsec_attacker-guess-0123456789abcdef", BODY)
    with pytest.raises(signing.SignatureError):
        signing.verify([SECRET], forged, BODY)


def test_a_made_up_signature_is_refused() -> None:
    with pytest.raises(signing.SignatureError):
        signing.verify([SECRET], f"t={int(time.time())},v1={'0' * 64}", BODY)


def test_a_tampered_body_is_refused() -> None:
    header = signing.sign(SECRET, BODY)
    with pytest.raises(signing.SignatureError):
        signing.verify([SECRET], header, BODY.replace(b"EventShared", b"EventWithdrawn"))


def test_a_changed_timestamp_is_refused() -> None:
    header = signing.sign(SECRET, BODY)
    t, v1 = header.split(",")
    moved = f"t={int(t[2:]) + 1},{v1}"
    with pytest.raises(signing.SignatureError):
        signing.verify([SECRET], moved, BODY)


def test_an_old_delivery_replayed_is_refused() -> None:
    six_minutes_ago = int(time.time()) - 360
    header = signing.sign(SECRET, BODY, timestamp=six_minutes_ago)
    with pytest.raises(signing.SignatureError, match="tolerance"):
        signing.verify([SECRET], header, BODY)
    # Within the five minutes it still verifies (the inbox then drops it as a duplicate by its id).
    assert signing.verify([SECRET], signing.sign(SECRET, BODY, timestamp=int(time.time()) - 240), BODY)


def test_a_timestamp_from_the_future_is_refused() -> None:
    with pytest.raises(signing.SignatureError):
        signing.verify([SECRET], signing.sign(SECRET, BODY, timestamp=int(time.time()) + 3600), BODY)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=123", "t=abc,v1=00", "garbage"])
def test_missing_or_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(signing.SignatureError):
        signing.verify([SECRET], header, BODY)


def test_no_known_secret_refuses_everything() -> None:
    with pytest.raises(signing.SignatureError):
        signing.verify([], signing.sign(SECRET, BODY), BODY)
