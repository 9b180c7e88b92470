"""Opaque list cursors, the same for every service: the sort key of the last row, base64 JSON."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import orjson

from shared.errors import InvalidInput


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, types: Sequence[type]) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        values = None
    # Checked, not trusted: a value of the wrong type would reach the SQL comparison.
    if (not isinstance(values, list) or len(values) != len(types)
            or not all(type(v) is t for v, t in zip(values, types, strict=True))):
        raise InvalidInput.field("query.cursor", "not a cursor from this list")
    return values
