"""Lexical evidence: BM25 (``bm25s``) over each tool's name split into words, its description and parameter names.

Embeddings miss exact words that matter ("invoice", "ISBN", a product name); BM25 catches them. Its scores are
one more piece of evidence for the decision model, and its top-1 over the whole catalogue is the ``lexical``
baseline of the real-catalogue suite. Words are lower-cased, split at camelCase and snake_case boundaries, and
stemmed (Snowball English, ``PyStemmer``), with English stop words dropped.
"""

from __future__ import annotations

import re
import threading
from typing import Iterable, Sequence

import numpy as np

from .tools import Tool

__all__ = ["LexicalIndex", "lexical_words", "tool_document"]

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
    words = []
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

    def score_names(self, query: str, names: Sequence[str], exclude: Iterable[str] = ()
                    ) -> tuple[list[float], float, str | None]:
        """The scores of ``names``, the best score of the whole catalogue (less ``exclude``) and its tool (None if
        nothing matched)."""
        scores = self.scores(query)
        for name in exclude:
            if name in self._rows:
                scores[self._rows[name]] = 0.0
        chosen = [float(scores[self._rows[n]]) if n in self._rows else 0.0 for n in names]
        if not len(scores):
            return chosen, 0.0, None
        best = int(np.argmax(scores))
        return chosen, float(scores[best]), self._names[best] if scores[best] > 0 else None

    def best(self, query: str, exclude: Iterable[str] = ()) -> tuple[str | None, float]:
        """The lexical top-1 tool and its score (None when no word of the query occurs in any tool)."""
        _, score, name = self.score_names(query, [], exclude)
        return name, score

    def __len__(self) -> int:
        return len(self._names)
