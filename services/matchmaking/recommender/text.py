"""Text models: how query, organisation and project text become comparable vectors.

The index only needs `fit`, `transform` (rows L2-normalised, so a dot product is a cosine) and,
for readable reasons, the term behind each dimension. A sentence-embedding model fits the same
protocol with a dense array and `terms() -> None`; TF-IDF is the default because profiles are
short, multilingual and full of technical words that embeddings of this size blur.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

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


class TextModel(Protocol):
    @property
    def fitted(self) -> bool: ...

    def fit(self, texts: Sequence[str]) -> None: ...

    def transform(self, texts: Sequence[str]) -> Any:
        """(len(texts), dim) scipy CSR matrix or numpy array, rows L2-normalised (or zero)."""

    def terms(self) -> Sequence[str] | None:
        """The word behind each dimension, or None when dimensions are not words (embeddings)."""


class TfidfTextModel:
    """TF-IDF over accent-folded words: 'Île', 'ILE' and 'ile' are one term; IDF is fitted on profiles."""

    def __init__(self, *, min_df: int = 1, max_features: int | None = 200_000) -> None:
        self._vectorizer = TfidfVectorizer(
            preprocessor=fold,
            token_pattern=r"(?u)\b[a-z0-9][a-z0-9]+\b",
            stop_words=sorted(STOP_WORDS),
            sublinear_tf=True,
            min_df=min_df,
            max_features=max_features,
            dtype=np.float32,
        )
        self._fitted = False
        self._terms: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self._fitted

    def fit(self, texts: Sequence[str]) -> None:
        if not any(t.strip() for t in texts):
            texts = ["placeholder"]  # an empty vocabulary is an error in scikit-learn, not an empty model
        self._vectorizer.fit(texts)
        self._terms = self._vectorizer.get_feature_names_out()
        self._fitted = True

    def transform(self, texts: Sequence[str]) -> Any:
        return self._vectorizer.transform(texts).tocsr()

    def terms(self) -> Sequence[str] | None:
        return self._terms
