"""Text normalisation shared by search, de-duplication and ranking (European names and accents)."""
from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^0-9a-z]+")
# Legal-form suffixes that differ between a register and a CSV file for the same organisation.
_LEGAL_FORMS = {
    "sa", "nv", "sprl", "srl", "bv", "bvba", "gmbh", "ag", "kg", "ug", "sas", "sarl", "sl", "spa",
    "ltd", "limited", "plc", "inc", "llc", "ab", "oy", "as", "aps", "kft", "zrt", "nyrt", "sp", "zoo",
    "asbl", "vzw", "ev", "scrl", "cv", "co", "corp",
}
_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ı": "i"})


def fold(text: str) -> str:
    """Lower case without accents: 'Île-de-France' -> 'ile-de-france', 'Straße' -> 'strasse'."""
    text = text.lower().translate(_SPECIAL)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    return [w for w in _NON_WORD.split(fold(text)) if w]


def name_key(name: str) -> str:
    """A key under which spellings of one organisation's name meet ('IBA S.A.' == 'iba sa')."""
    tokens = words(name.replace(".", ""))
    while len(tokens) > 1 and tokens[-1] in _LEGAL_FORMS:
        tokens.pop()
    return " ".join(tokens)
