"""Personal data, crypto-shredded: sealed with a key per person before it enters the log or a table.

A person's name, e-mail, phone (and whatever else is about them) is stored as an envelope,
`pii:v1:<person_id>:<base64url(nonce + AES-256-GCM ciphertext)>`, with the person id bound as
associated data, so an envelope cannot be passed off as another person's. The keys live in
`person_keys`, outside the append-only log: erasing a person sets their key to NULL, and every
envelope of theirs, in events, read models and stored responses, reads back as ERASED from then on,
while the events themselves (and so the hash chain) stay exactly as they were.

A value about several people (a message naming both sides of a meeting) is sealed once per
person, one envelope inside the other (the outer ones marked `pii:v1+:`): erasing any of them
erases the value. Only a marked layer is opened further, so typed text that merely looks like an
envelope is sealed and read back as the text it is.

Reads decrypt in batches (`Keyring`): one key lookup per list, not one per row; a Keyring that
seals several values (a message's recipient, subject and body) looks each key up once too.

What is sealed during a request, and what is opened, is remembered (`tracking`) so that the
idempotency middleware can seal a stored response body again before it keeps it: a replayed
response then reads "erased" too, and no plaintext reaches the store through it.
"""
from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, Connection, LargeBinary, String, Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db import ByIds
from shared.errors import Conflict
from shared.tables import metadata

__all__ = ["ERASED", "Keyring", "PersonErased", "erase", "is_sealed", "open", "open_tree", "person_keys", "seal",
           "seal_fields", "status", "tracking"]

PREFIX = "pii:v1:"
NESTED = "pii:v1+:"  # an envelope whose plaintext is another envelope
ERASED = "erased"
_NONCE = 12

# One row per person who ever had data sealed (or was erased): `key` is NULL once erased, and
# the row stays as the tombstone that keeps their data from being sealed (and readable) again.
person_keys = Table(
    "person_keys",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("key", LargeBinary),
    Column("created_at", String(32), nullable=False),
    Column("erased_at", String(32)),
)


class PersonErased(Conflict):
    """New personal data about an erased person: refused, or erasure would not be for good."""

    title, type_slug = "Person erased", "person-erased"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------------
# What a request sealed and opened (plaintext -> person ids), for the idempotency middleware

_seen: ContextVar[dict[str, frozenset[str]] | None] = ContextVar("pii_seen", default=None)


@contextlib.contextmanager
def tracking() -> Iterator[dict[str, frozenset[str]]]:
    """Remember, within this block (threads it starts included), each plaintext sealed or opened."""
    outer = _seen.get()
    seen: dict[str, frozenset[str]] = {}
    token = _seen.set(seen)
    try:
        yield seen
    finally:
        _seen.reset(token)
        if outer is not None:  # a block inside a tracked request: the request saw it too
            for text, persons in seen.items():
                outer[text] = outer.get(text, frozenset()) | persons


def _remember(plaintext: str, persons: Iterable[str]) -> None:
    seen = _seen.get()
    if seen is not None and plaintext and plaintext != ERASED:
        seen[plaintext] = seen.get(plaintext, frozenset()) | frozenset(persons)


# --------------------------------------------------------------------------------------------
# Sealing


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(PREFIX) or value.startswith(NESTED))


def _person_of(envelope: str) -> str:
    prefix = NESTED if envelope.startswith(NESTED) else PREFIX
    return envelope[len(prefix):].rpartition(":")[0]


def person_of(value: Any) -> str | None:
    """The person an envelope was sealed for (the outermost one); None for a plain value."""
    return _person_of(value) if is_sealed(value) else None


# Built once: every write and read of personal data looks keys up, and building a statement costs
# SQLAlchemy more than running it.
_KEY = select(person_keys.c.key, person_keys.c.erased_at).where(person_keys.c.person_id == bindparam("person_id"))
# A record's one person, a meeting's two, a page's many.
_KEYS = ByIds(select(person_keys.c.person_id, person_keys.c.key), person_keys.c.person_id)


def _key_for_sealing(conn: Connection, person_id: str) -> bytes:
    """The person's key, made on first use in the caller's transaction."""
    row = conn.execute(_KEY, {"person_id": person_id}).first()
    if row is None:
        key = AESGCM.generate_key(bit_length=256)
        dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        # Two writers sealing a new person's data at once: one key wins, both use it.
        conn.execute(dialect_insert(person_keys).values(person_id=person_id, key=key, created_at=_now())
                     .on_conflict_do_nothing(index_elements=["person_id"]))
        row = conn.execute(_KEY, {"person_id": person_id}).first()
    if row.key is None:
        raise PersonErased(f"person {person_id} was erased; no personal data of theirs is recorded again",
                           person_id=person_id)
    return row.key


def _seal_with(key: bytes, person_id: str, value: str, *, nested: bool = False) -> str:
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), person_id.encode())
    prefix = NESTED if nested else PREFIX
    return f"{prefix}{person_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def seal(conn: Connection, person_id: str, value: str | None) -> str | None:
    """`value` as an envelope under the person's key (None stays None)."""
    if value is None:
        return value
    _remember(value, [person_id])
    return _seal_with(_key_for_sealing(conn, person_id), person_id, value)


def seal_fields(conn: Connection, person_id: str, data: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """`data` with the named string fields sealed (one key lookup for them all)."""
    out = dict(data)
    wanted = [f for f in fields if isinstance(out.get(f), str)]
    if wanted:
        key = _key_for_sealing(conn, person_id)
        for f in wanted:
            _remember(out[f], [person_id])
            out[f] = _seal_with(key, person_id, out[f])
    return out


# --------------------------------------------------------------------------------------------
# Opening


class Keyring:
    """Keys fetched in one query per batch of people; opens envelopes (nested ones too)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.keys: dict[str, bytes | None] = {}

    def load(self, person_ids: Iterable[str]) -> Keyring:
        wanted = sorted({p for p in person_ids if p not in self.keys})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = _KEYS.execute(self.conn, chunk).all()
            found = {row.person_id: row.key for row in rows}
            for person_id in chunk:
                self.keys[person_id] = found.get(person_id)
        return self

    def sealing_key(self, person_id: str) -> bytes:
        """The person's key to seal with: made on first use; PersonErased once they are erased."""
        key = self.keys.get(person_id)
        if key is None:  # not looked up yet, never made, or erased: `_key_for_sealing` tells them apart
            key = self.keys[person_id] = _key_for_sealing(self.conn, person_id)
        return key

    def seal_for_all(self, person_ids: Iterable[str], value: str | None) -> str | None:
        """`value` sealed once per person, nested: any one of them erased, and it reads ERASED."""
        persons = sorted(set(person_ids))
        if value is None or not persons:
            return value
        _remember(value, persons)
        for layer, person_id in enumerate(persons):
            value = _seal_with(self.sealing_key(person_id), person_id, value, nested=layer > 0)
        return value

    def open(self, value: Any) -> Any:
        """Plaintext, ERASED when a key is gone (or does not fit), or `value` itself if not sealed."""
        if not is_sealed(value):
            return value
        persons = []
        nested = True
        while nested and is_sealed(value):
            nested = value.startswith(NESTED)
            person_id = _person_of(value)
            if person_id not in self.keys:
                self.load([person_id])
            key = self.keys[person_id]
            if key is None:
                return ERASED
            persons.append(person_id)
            data = value.rpartition(":")[2]
            try:
                raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
                value = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], person_id.encode()).decode()
            except (InvalidTag, ValueError):
                return ERASED
        _remember(value, persons)
        return value

    def open_tree(self, value: Any) -> Any:
        """`value` (JSON-like: dicts, lists, strings) with every envelope in it opened."""
        self.load(_person_of(v) for v in _strings(value) if is_sealed(v))
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.open(value)
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._walk(v) for v in value]
        return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def open(conn: Connection, value: Any) -> Any:  # noqa: A001 - the module's verb, as `seal` is
    """One value opened: plaintext, ERASED, or the value itself when it is not sealed (old data)."""
    return Keyring(conn).open(value)


def open_tree(conn: Connection, value: Any) -> Any:
    return Keyring(conn).open_tree(value)


def open_rows(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows (mappings) with every sealed column opened, with one key lookup for them all."""
    return Keyring(conn).open_tree([dict(row) for row in rows])


# --------------------------------------------------------------------------------------------
# Erasure and status


def erase(conn: Connection, person_id: str) -> bool:
    """Delete the person's key (for good: the row stays as a tombstone); False if already erased."""
    now = _now()
    changed = conn.execute(update(person_keys).where(person_keys.c.person_id == person_id,
                                                     person_keys.c.erased_at.is_(None))
                           .values(key=None, erased_at=now)).rowcount
    if changed:
        return True
    exists = conn.execute(select(person_keys.c.person_id).where(person_keys.c.person_id == person_id)).first()
    if exists:
        return False
    conn.execute(insert(person_keys).values(person_id=person_id, key=None, created_at=now, erased_at=now))
    return True


def status(conn: Connection, person_id: str) -> dict[str, Any]:
    row = conn.execute(select(person_keys.c.erased_at).where(person_keys.c.person_id == person_id)).first()
    erased_at = row.erased_at if row else None
    return {"erased": erased_at is not None, "erased_at": erased_at}


def checkpoint(conn: Connection) -> None:
    """SQLite: move the WAL into the database file and truncate it, so that no page from before an
    erasure (the key among them) stays in the -wal file. Run outside a transaction."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# --------------------------------------------------------------------------------------------
# Stored responses (shared/idempotency.py)


def reseal_json(conn: Connection, body: bytes, seen: Mapping[str, frozenset[str]]) -> bytes | None:
    """`body` (JSON) with every string that a request sealed or opened sealed again for its people;
    None when plaintext would remain (not JSON, or a value quoted inside a longer string)."""
    if not seen or not body:
        return body
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None if any(_occurs(text, body) for text in seen) else body
    keys: dict[str, bytes] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, str) and value in seen:
            for layer, person_id in enumerate(sorted(seen[value])):
                if person_id not in keys:
                    keys[person_id] = _key_for_sealing(conn, person_id)
                value = _seal_with(keys[person_id], person_id, value, nested=layer > 0)
            return value
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    resealed = orjson.dumps(walk(document))
    return None if any(_occurs(text, resealed) for text in seen) else resealed


def _occurs(text: str, body: bytes) -> bool:
    escaped = orjson.dumps(text)[1:-1]
    return len(text) >= 4 and (text.encode() in body or escaped in body)


def open_json(conn: Connection, body: bytes) -> bytes:
    """A stored JSON body with its envelopes opened (ERASED where a key is gone)."""
    if b"pii:v1" not in body:
        return body
    return orjson.dumps(open_tree(conn, orjson.loads(body)))
