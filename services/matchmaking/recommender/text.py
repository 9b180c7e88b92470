"""Text models: how query, organisation and project text become comparable vectors.

The index only needs `fit_transform`, `transform` (rows L2-normalised, so a dot product is a cosine) and,
for readable reasons, the term behind each dimension. A sentence-embedding model fits the same
protocol with a dense array and `terms() -> None`; TF-IDF is the default because profiles are
short, multilingual and full of technical words that embeddings of this size blur.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfTransformer

from shared.text import fold

# Function words of the cluster languages other than English, accents already folded.
_OTHER_STOP_WORDS = frozenset(
    """
    le la les un une des du de et en au aux pour par sur dans avec est sont ce ces qui que ou
    der die das ein eine und zu mit von fur auf ist im den dem des nicht sich auch als bei
    het een van en voor met op te zijn dat die aan bij om ook als
    il lo gli una di da per con su che del della delle dei degli nel alla
    el los las y con para por del una que se
    """.split()
)
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | _OTHER_STOP_WORDS
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@lru_cache(maxsize=65_536)
def _fold_fragment(fragment: str) -> str:
    return fold(fragment)


def fold_fast(text: str) -> str:
    """`shared.text.fold`, same result, without its per-character Python loop over ASCII text.

    After lower-casing the whole text (lower case depends on context: a final sigma), folding is
    character-local (decompose, drop combining marks, a few ligatures), so folding only the
    non-ASCII runs, each distinct run once, is equivalent; a profile built from 30 project texts
    is folded in microseconds instead of milliseconds.
    """
    text = text.lower()
    if text.isascii():
        return text
    return _NON_ASCII.sub(lambda m: _fold_fragment(m.group()), text)


class TextModel(Protocol):
    @property
    def fitted(self) -> bool: ...

    def fit_transform(self, texts: Sequence[str]) -> Any:
        """Fit on the texts and return their vectors, as `transform` would after `fit`."""

    def transform(self, texts: Sequence[str]) -> Any:
        """(len(texts), dim) scipy CSR matrix or numpy array, rows L2-normalised (or zero)."""

    def terms(self) -> Sequence[str] | None:
        """The word behind each dimension, or None when dimensions are not words (embeddings)."""


class TfidfTextModel:
    """TF-IDF over accent-folded words: 'Île', 'ILE' and 'ile' are one term; IDF is fitted on profiles.

    With `ngram_range=(1, 2)` (the index's default) pairs of adjacent words are terms too, so
    "gene therapy" or "proton therapy" match as such rather than as two common words. A pair
    counts only once `min_phrase_df` documents use it: a pair found in one profile cannot tie two
    organisations together, and such pairs are most of the pair vocabulary (memory, and noise in
    the cosine); the `max_phrases` most used pairs are kept. Every single word stays, as a rare
    one may be a new member's one specialty. Pairs double the text fit's work (50,000 synthetic
    profiles: a million distinct pairs counted, then pruned), not the query's.
    """

    def __init__(self, *, min_df: int = 1, max_features: int | None = 200_000,
                 ngram_range: tuple[int, int] = (1, 1), min_phrase_df: int = 2,
                 max_phrases: int | None = 50_000) -> None:
        self._options: dict[str, Any] = dict(
            preprocessor=fold_fast,
            token_pattern=r"(?u)\b[a-z0-9][a-z0-9]+\b",
            stop_words=sorted(STOP_WORDS),
            ngram_range=ngram_range,
            dtype=np.float32,
        )
        self._min_df = min_df
        self._max_features = max_features  # single words, the most used first
        self._min_phrase_df = max(min_phrase_df, min_df)
        self._max_phrases = max_phrases  # word pairs, the most used first
        self._counter: CountVectorizer | None = None
        self._weighting = TfidfTransformer(sublinear_tf=True)
        self._terms: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self._counter is not None

    def fit_transform(self, texts: Sequence[str]) -> Any:
        # An empty vocabulary is an error in scikit-learn, not an empty model: seed it with a word.
        counter = CountVectorizer(**self._options)
        counts = counter.fit_transform([*texts, "placeholder"]).tocsr()
        names = counter.get_feature_names_out()  # object array: a fixed-width copy of a million pairs is 200 MB
        df = np.bincount(counts.indices, minlength=len(names))
        pair = np.fromiter((" " in name for name in names), dtype=bool, count=len(names))
        words = _most_used(np.flatnonzero(~pair & ((df >= self._min_df) | (names == "placeholder"))), df,
                           self._max_features)
        pairs = _most_used(np.flatnonzero(pair & (df >= self._min_phrase_df)), df, self._max_phrases)
        keep = np.sort(np.concatenate([words, pairs]))
        counts = counts[:, keep]
        self._counter = CountVectorizer(**self._options, vocabulary=names[keep].tolist())
        self._terms = names[keep]
        return self._weighting.fit_transform(counts)[: len(texts)].tocsr()

    def transform(self, texts: Sequence[str]) -> Any:
        if self._counter is None:
            raise RuntimeError("the text model is not fitted")
        return self._weighting.transform(self._counter.transform(texts)).tocsr()

    def terms(self) -> Sequence[str] | None:
        return self._terms


def _most_used(columns: np.ndarray, df: np.ndarray, limit: int | None) -> np.ndarray:
    if limit is None or len(columns) <= limit:
        return columns
    return columns[np.argsort(-df[columns], kind="stable")[:limit]]
