"""Lexical evidence: BM25 (``bm25s``) over each tool's name split into words, its description and parameter names.

Embeddings miss exact words that matter ("invoice", "ISBN", a product name); BM25 catches them. Its scores are
one more piece of evidence for the decision model, and its top-1 over the whole catalogue is the ``lexical``
baseline of the real-catalogue suite. Words are lower-cased, split at camelCase and snake_case boundaries, and
stemmed (Snowball English, ``PyStemmer``), with English stop words dropped.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .tools import Tool

__all__ = ["LexicalIndex", "LexicalMatch", "lexical_words", "tool_document"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[A-Za-z0-9]+")
_STOP_WORDS = frozenset("""a an and are as at be but by can could do does for from get has have how i if in into is it
its me my of on or our please so than that the their them then there these this to was we what when where which who
will with would you your""".split())
_stemmer_lock = threading.Lock()
_stemmer = None


def _stem(words: list[str]) -> list[str]:
    global _stemmer
    with _stemmer_lock:  # a PyStemmer object is not safe to share between threads
        if _stemmer is None:
            import Stemmer

            _stemmer = Stemmer.Stemmer("english")
        return _stemmer.stemWords(words)


def lexical_words(text: str) -> list[str]:
    """The stemmed, lower-cased words of ``text`` that BM25 counts (``getWeatherForecast`` → get, weather, forecast)."""
    words: list[str] = []
    for token in _WORD.findall(text):
        words.extend(part.lower() for part in _CAMEL.split(token) if part)
    return _stem([w for w in words if w not in _STOP_WORDS])


def tool_document(tool: Tool) -> str:
    """The text BM25 indexes for a tool: its name (split into words), description and parameter names."""
    return " ".join([tool.name.replace("_", " ").replace("-", " ").replace(".", " ").replace("/", " "),
                     tool.description, *tool.parameter_names()])


class LexicalIndex:
    """BM25 over a fixed list of tools; build a new one when the catalogue changes (it takes ~0.1 s per 1,000 tools).

    Example:
        >>> index = LexicalIndex([Tool("get_invoice", "Fetch an invoice by number"), Tool("send_email", "Send mail")])
        >>> index.best("where is invoice 4411?")[0]
        'get_invoice'
    """

    def __init__(self, tools: Iterable[Tool]) -> None:
        import bm25s

        tools = list(tools)
        self._names = [t.name for t in tools]
        self._rows = {name: row for row, name in enumerate(self._names)}
        self._bm25 = bm25s.BM25()
        documents = [lexical_words(tool_document(t)) or [""] for t in tools]
        self._bm25.index(documents, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every tool for ``query``, in the order the tools were given."""
        words = [w for w in lexical_words(query) if w in self._bm25.vocab_dict]
        if not words or not self._names:
            return np.zeros(len(self._names), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(words), dtype=np.float32)

    def match(self, query: str) -> "LexicalMatch":
        """The query's BM25 scores against every tool, computed once and read as often as a route needs."""
        return LexicalMatch(self.scores(query), self._rows, self._names)

    def score_names(self, query: str, names: Sequence[str], exclude: Iterable[str] = ()
                    ) -> tuple[list[float], float, str | None]:
        """The scores of ``names``, the best score of the whole catalogue (less ``exclude``) and its tool (None if
        nothing matched)."""
        match = self.match(query)
        name, score = match.best(exclude)
        return match.of(names), score, name

    def best(self, query: str, exclude: Iterable[str] = ()) -> tuple[str | None, float]:
        """The lexical top-1 tool and its score (None when no word of the query occurs in any tool)."""
        return self.match(query).best(exclude)

    def __len__(self) -> int:
        return len(self._names)


@dataclass(frozen=True)
class LexicalMatch:
    """One query's BM25 scores against every tool of a :class:`LexicalIndex` (the hybrid candidate and the
    candidates' evidence both read them)."""

    scores: np.ndarray
    rows: Mapping[str, int]
    names: Sequence[str]

    def of(self, names: Sequence[str]) -> list[float]:
        """The scores of these tools (0 for a name the index does not hold)."""
        return [float(self.scores[self.rows[n]]) if n in self.rows else 0.0 for n in names]

    def best(self, exclude: Iterable[str] = ()) -> tuple[str | None, float]:
        """The best-scoring tool less ``exclude`` and its score (None when no word of the query matched)."""
        scores = self.scores
        dropped = [self.rows[n] for n in exclude if n in self.rows]
        if dropped:
            scores = scores.copy()
            scores[dropped] = 0.0
        if not len(scores):
            return None, 0.0
        row = int(np.argmax(scores))
        return (self.names[row] if scores[row] > 0 else None), float(scores[row])
