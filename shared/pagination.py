"""Lists in pages, the same for every service: `Page`, and opaque cursors (the sort key of the last
row, base64 JSON) that a next request passes back."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Connection, Select, tuple_

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


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list: `next_cursor` is opaque; pass it back as `cursor` for the next page."""

    data: list[T]
    next_cursor: str | None = None


def paged(conn: Connection, stmt: Select, keys: Sequence[tuple[ColumnElement, type]], cursor: str | None,
          limit: int, public: Callable[[dict[str, Any]], T]) -> Page[T]:
    """The page of `stmt` after `cursor` in the order of `keys` (each a column and its type)."""
    order = [expr for expr, _ in keys]
    if cursor:
        stmt = stmt.where(tuple_(*order) > tuple_(*decode_cursor(cursor, [t for _, t in keys])))
    stmt = stmt.add_columns(*(expr.label(f"_key{i}") for i, expr in enumerate(order)))
    rows = conn.execute(stmt.order_by(*order).limit(limit + 1)).mappings().all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1][f"_key{i}"] for i in range(len(order))])
    return Page[T](data=[public(dict(row)) for row in rows], next_cursor=next_cursor)
