"""Tool retrieval on a vector database: any LangChain ``VectorStore`` instead of the embedded FAISS index.

:class:`VectorStoreIndex` keeps each tool as one record of the store: the embedding of its canonical text (by the
router's own embedder, wrapped as LangChain ``Embeddings`` by :class:`RouterEmbeddings`, so the vectors are the
ones FAISS would hold), the canonical text as the document, and as metadata the tool's full JSON and the identity
of what embedded it::

    id        uuid5 of the tool name (the same in every process: a remove needs no look-up)
    text      render_tool(tool)
    metadata  {"gentool_router": 1, "name": ..., "tool": "<the tool's JSON, as a string>", "seq": when it was added,
               "embedder": model id, "dimension": 384, "tool_text_version": "1"}

``seq`` (nanoseconds, plus the tool's place in its batch) keeps the catalogue in the order it was added in every
process that reads it (stores list records in their own order), as FAISS's folder does. Metadata values are flat
scalars (the tool's JSON is a string), so stores that accept only those (Chroma) or
reorder JSON keys (pgvector's JSONB) keep the tool exactly. Opening a store reads every record back: the catalogue,
the BM25 index (``lexical.py``) and each tool's vector live in process, the store answers the nearest-neighbour
searches. A router replica therefore needs only the store's address. Records embedded by another embedder or
tool-text version are refused (:class:`~gentool_router.errors.IndexMismatchError`), records not written by
gentool-router too.

Scores are the inner products of the query with the tools' vectors (cosine similarity of unit vectors), computed
here for the store's hits, whatever the store's own score is (Qdrant's cosine, pgvector's distance, ...): the
evidence and the decision model see the numbers FAISS would give.

The generic LangChain API covers searching (``similarity_search_by_vector``), writing (``add_texts`` with ids)
and deleting (``delete(ids)``); listing every record has no generic call, so a small reader per store does it
(:func:`read_qdrant`, :func:`read_in_memory`; pass ``reader=`` for another store). :func:`qdrant_store` opens a
Qdrant collection (local mode in a folder or in memory, or a Qdrant server) ready for the router; it needs the
``vectorstore`` extra (``pip install 'gentool-router[vectorstore]'``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

from .catalog import ToolCatalog
from .embedder import Embedder, MiniLMEmbedder
from .errors import CatalogError, ConfigError, GentoolError, IndexFormatError, IndexMismatchError, VectorStoreError
from .index import PROGRESS_THRESHOLD, _checked_vectors
from .index_base import BaseToolIndex, ScoredTool, check_k
from .lexical import LexicalIndex
from .poison import DEFAULT_POLICY, SuspiciousPolicy
from .tool_text import TOOL_TEXT_VERSION, render_tool
from .tools import Tool

__all__ = [
    "VectorStoreIndex",
    "RouterEmbeddings",
    "StoredRecord",
    "qdrant_store",
    "read_qdrant",
    "read_in_memory",
    "record_id",
    "RECORD_FORMAT_VERSION",
]

logger = logging.getLogger(__name__)

#: Bumped when the record layout changes; a store written with another is refused.
RECORD_FORMAT_VERSION = 1
#: The metadata field that marks a record as a gentool-router tool (its value: the record format version).
MARKER = "gentool_router"
_ID_NAMESPACE = uuid.UUID("6f0b7a52-2c1e-5d53-9a57-6d1f3b0c9e21")
#: Records read per request when a store is listed (Qdrant scroll).
READ_BATCH = 512
EXTRA = "pip install 'gentool-router[vectorstore]'"


def record_id(name: str) -> str:
    """The store id of the tool called ``name``: a UUID (Qdrant takes only UUIDs and integers), the same everywhere."""
    return str(uuid.uuid5(_ID_NAMESPACE, name))


class RouterEmbeddings(Embeddings):
    """A gentool-router :class:`~gentool_router.embedder.Embedder` as LangChain ``Embeddings``.

    Give it to the vector store (``QdrantVectorStore(..., embedding=RouterEmbeddings())``): the store then embeds
    tool texts with the router's embedder, and :class:`VectorStoreIndex` knows which embedder that is. While an
    index adds tools it hands over the vectors it computed already (:meth:`prepared`), so nothing is embedded twice
    and the stored vectors are exactly the ones the FAISS index would hold.
    """

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder: Embedder = embedder if embedder is not None else MiniLMEmbedder()
        self._prepared = threading.local()

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        texts = list(texts)
        prepared: Mapping[str, np.ndarray] = getattr(self._prepared, "vectors", None) or {}
        missing = list(dict.fromkeys(t for t in texts if t not in prepared))
        computed = dict(zip(missing, self.embedder.embed_documents(missing))) if missing else {}
        return [np.asarray(prepared[t] if t in prepared else computed[t], dtype=np.float32).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_queries([text])[0].astype(np.float32).tolist()

    @contextmanager
    def prepared(self, texts: Sequence[str], vectors: np.ndarray) -> Iterator[None]:
        """Within this block (this thread only), the given texts embed as the given vectors."""
        previous = getattr(self._prepared, "vectors", None)
        self._prepared.vectors = dict(zip(texts, vectors))
        try:
            yield
        finally:
            self._prepared.vectors = previous

    def __repr__(self) -> str:
        return f"RouterEmbeddings({self.embedder.model_id!r})"


@dataclass(frozen=True)
class StoredRecord:
    """One record as a reader lists it: its id, document text, metadata and vector (None if the store does not
    return vectors: the index then embeds the text again when it opens the store)."""

    id: str
    text: str
    metadata: Mapping[str, Any]
    vector: Sequence[float] | None = None


Reader = Callable[[VectorStore], Iterable[StoredRecord]]


def read_in_memory(store: VectorStore) -> Iterator[StoredRecord]:
    """Every record of a LangChain ``InMemoryVectorStore``."""
    for record in list(store.store.values()):  # type: ignore[attr-defined]
        yield StoredRecord(str(record["id"]), record["text"], record["metadata"] or {}, record["vector"])


def read_qdrant(store: VectorStore) -> Iterator[StoredRecord]:
    """Every record of a ``langchain_qdrant.QdrantVectorStore`` (dense vectors), with its vector (Qdrant's scroll)."""
    client, collection = store.client, store.collection_name  # type: ignore[attr-defined]
    vector_name = store.vector_name  # type: ignore[attr-defined]
    offset = None
    while True:
        points, offset = client.scroll(collection, limit=READ_BATCH, offset=offset, with_payload=True,
                                       with_vectors=[vector_name] if vector_name else True)
        for point in points:
            payload = point.payload or {}
            vector = point.vector.get(vector_name) if isinstance(point.vector, dict) else point.vector
            yield StoredRecord(str(point.id), payload.get(store.content_payload_key) or "",  # type: ignore[attr-defined]
                               payload.get(store.metadata_payload_key) or {}, vector)  # type: ignore[attr-defined]
        if offset is None:
            return


def default_reader(store: VectorStore) -> Reader:
    """The reader for ``store``'s class, or a :class:`ConfigError` asking for ``reader=``."""
    if isinstance(store, InMemoryVectorStore):
        return read_in_memory
    if any(cls.__module__.split(".")[0] == "langchain_qdrant" for cls in type(store).__mro__):
        return read_qdrant
    raise ConfigError(
        f"gentool-router cannot list the records of a {type(store).__name__}: pass reader= (a function that yields "
        "a StoredRecord for every record of the store; read_qdrant and read_in_memory are examples)"
    )


class VectorStoreIndex(BaseToolIndex):
    """Tools in a LangChain ``VectorStore``; the catalogue, BM25 and the tools' vectors read into this process.

    Args:
        store: The vector store. It must embed with :class:`RouterEmbeddings` (the router's embedder) and should
            hold gentool-router's records only (one collection or table of its own); :func:`qdrant_store` makes
            such a store. Its records are read now: an empty store is a fresh index.
        suspicious: Policy for instruction-like text in tools added from now on (see :class:`ToolCatalog`);
            stored tools are never screened again (their text is what was embedded).
        reader: Lists every record of the store (see :func:`default_reader`); needed for stores other than
            Qdrant's and LangChain's in-memory one.
        show_progress: A progress bar while tools without a stored vector are embedded again on opening.

    Raises:
        ConfigError: the store does not embed with :class:`RouterEmbeddings`, lacks a needed method, or no reader.
        IndexMismatchError: the store holds tools embedded with another embedder, tool-text version or format.
        IndexFormatError: a record that gentool-router did not write, or a damaged one.
        VectorStoreError: the store failed (unreachable, locked).

    Several processes may open one store (a database server): each reads the catalogue when it opens,
    and :meth:`refresh` reads it again after another process added or removed tools.

    Example:
        >>> store = qdrant_store("tools", location=":memory:")
        >>> index = VectorStoreIndex.build([{"name": "get_weather", "description": "Weather forecast"}], store)
        >>> index.search("will it rain tomorrow?", k=1)[0].tool.name
        'get_weather'
    """

    def __init__(self, store: VectorStore, *, suspicious: SuspiciousPolicy = DEFAULT_POLICY,
                 reader: Reader | None = None, show_progress: bool | None = None) -> None:
        if not isinstance(store, VectorStore):
            raise ConfigError(f"store must be a LangChain VectorStore, got {type(store).__name__}")
        embeddings = getattr(store, "embeddings", None)
        if not isinstance(embeddings, RouterEmbeddings):
            raise ConfigError(
                f"the {type(store).__name__} embeds with {type(embeddings).__name__}, not the router's embedder: "
                "create it with embedding=gentool_router.vectorstore.RouterEmbeddings(embedder)"
            )
        missing = [m for m in ("similarity_search_by_vector", "delete")
                   if getattr(type(store), m) is getattr(VectorStore, m)]
        if type(store).add_texts is VectorStore.add_texts and type(store).add_documents is VectorStore.add_documents:
            missing.append("add_texts")
        if missing:
            raise ConfigError(f"{type(store).__name__} does not implement {', '.join(missing)}: it cannot hold a catalogue")
        self.store = store
        self.embedder: Embedder = embeddings.embedder
        self._embeddings = embeddings
        self._reader = reader if reader is not None else default_reader(store)
        self._where = _describe(store)
        self._lock = threading.RLock()
        # a store inside this process (Qdrant's local mode) is not safe for concurrent calls: one at a time
        self._store_lock: threading.Lock | None = threading.Lock() if _in_process(store) else None
        self._version = 0
        self._lexical: tuple[int, LexicalIndex] | None = None
        self._unknown_seen: set[str] = set()
        self._catalog, self._texts, self._vectors = self._read(suspicious, show_progress)

    @classmethod
    def build(cls, tools: Iterable[Any] | ToolCatalog, store: VectorStore, *, show_progress: bool | None = None,
              suspicious: SuspiciousPolicy | None = None, reader: Reader | None = None) -> "VectorStoreIndex":
        """Add a catalogue to ``store`` (usually an empty one) and return the index over it; like
        :meth:`ToolIndex.build <gentool_router.index.ToolIndex.build>`, an empty catalogue, or one the ``suspicious``
        policy leaves nothing of, is a :class:`CatalogError`, and so is a name the store holds already."""
        if isinstance(tools, ToolCatalog):
            catalog, policy = tools, suspicious or tools.suspicious
        else:
            policy = suspicious or DEFAULT_POLICY
            catalog = ToolCatalog.from_tools(tools, suspicious="allow")  # screened once, by index.add below
        if len(catalog) == 0:
            raise CatalogError("the tool catalogue is empty: give at least one tool")
        index = cls(store, suspicious=policy, reader=reader)
        if not index.add(list(catalog), show_progress=show_progress):
            raise CatalogError("every tool was left out for instruction-like text (description, parameters, version): "
                               f"{', '.join(index.catalog.excluded)} (see suspicious= in the docs)")
        return index

    # ----------------------------------------------------------- reading
    def _read(self, suspicious: SuspiciousPolicy, show_progress: bool | None
              ) -> tuple[ToolCatalog, dict[str, str], dict[str, np.ndarray]]:
        """Every record of the store, checked: the catalogue, the tools' texts and vectors."""
        catalog = ToolCatalog(suspicious=suspicious)
        texts: dict[str, str] = {}
        vectors: dict[str, np.ndarray] = {}
        to_embed: list[str] = []
        dimension = self.embedder.dimension
        records = self._call("reading the records", lambda: list(self._reader(self.store)))
        checked = sorted(((self._check_record(r), r) for r in records),
                         key=lambda pair: (_seq(pair[1].metadata), pair[0].name))
        for tool, record in checked:
            if tool.name in catalog:
                raise IndexFormatError(f"{self._where} holds the tool {tool.name!r} twice")
            catalog.add(tool, screen=False)
            texts[tool.name] = record.text
            if record.vector is None:
                to_embed.append(tool.name)
                continue
            vector = np.asarray(record.vector, dtype=np.float32).ravel()
            if vector.shape != (dimension,):
                raise IndexMismatchError(f"{self._where}: the vector of {tool.name!r} has {vector.size} dimensions, "
                                         f"the embedder {self.embedder.model_id!r} gives {dimension}")
            vectors[tool.name] = vector
        if to_embed:
            if show_progress is None:
                show_progress = len(to_embed) >= PROGRESS_THRESHOLD
            embedded = _checked_vectors(self.embedder.embed_documents([texts[n] for n in to_embed],
                                                                      show_progress=show_progress),
                                        len(to_embed), dimension, self.embedder)
            vectors.update(zip(to_embed, embedded))
        return catalog, texts, vectors

    def _check_record(self, record: StoredRecord) -> Tool:
        meta = record.metadata if isinstance(record.metadata, Mapping) else {}
        what = f"{self._where}: record {record.id}"
        if MARKER not in meta:
            raise IndexFormatError(f"{what} was not written by gentool-router (no {MARKER!r} field): give the router "
                                   "a collection of its own")
        if meta[MARKER] != RECORD_FORMAT_VERSION:
            raise IndexMismatchError(f"{what} has record format {meta[MARKER]!r}, this gentool-router reads "
                                     f"{RECORD_FORMAT_VERSION}: rebuild the store (a new collection)")
        if meta.get("embedder") != self.embedder.model_id or meta.get("dimension") != self.embedder.dimension:
            raise IndexMismatchError(
                f"{self._where} was built with embedder {meta.get('embedder')!r} ({meta.get('dimension')} dims), but "
                f"the router uses {self.embedder.model_id!r} ({self.embedder.dimension} dims): rebuild it (a new "
                "collection) or pass the matching embedder to RouterEmbeddings"
            )
        if meta.get("tool_text_version") != TOOL_TEXT_VERSION:
            raise IndexMismatchError(
                f"{self._where} was built with tool-text version {meta.get('tool_text_version')!r}, this "
                f"gentool-router renders version {TOOL_TEXT_VERSION!r}: rebuild it (a new collection)"
            )
        try:
            tool = Tool.from_dict(json.loads(meta["tool"]))
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise IndexFormatError(f"{what}: bad tool record ({_one_line(exc)})") from None
        if meta.get("name") != tool.name or record.text != render_tool(tool):
            raise IndexFormatError(f"{what}: its name or text is not the one of its tool {tool.name!r} (edited "
                                   "outside gentool-router?)")
        return tool

    def refresh(self, *, show_progress: bool | None = None) -> int:
        """Read the catalogue from the store again (another process added or removed tools); returns its size."""
        catalog, texts, vectors = self._read(self.suspicious, show_progress)
        with self._lock:
            catalog.excluded.update(self._catalog.excluded)
            self._catalog, self._texts, self._vectors = catalog, texts, vectors
            self._version += 1
            self._unknown_seen.clear()
            return len(catalog)

    # ----------------------------------------------------------- editing
    def add(self, tools: Iterable[Any], *, show_progress: bool | None = None) -> list[str]:
        """Add tools (any supported form) to the store and return their store ids; a name already in this index
        or in the store is a :class:`CatalogError`. Embedding runs outside the index lock (routes go on)."""
        new_tools = [t for t in map(self._catalog.prepare, tools) if t is not None]
        self._check_new_names([t.name for t in new_tools])
        if not new_tools:
            return []
        texts = [render_tool(t) for t in new_tools]
        if show_progress is None:
            show_progress = len(texts) >= PROGRESS_THRESHOLD
        vectors = _checked_vectors(self.embedder.embed_documents(texts, show_progress=show_progress),
                                   len(texts), self.embedder.dimension, self.embedder)
        names = [t.name for t in new_tools]
        ids = [record_id(n) for n in names]
        start = time.time_ns()
        metadatas = [self._metadata(t, start + position) for position, t in enumerate(new_tools)]
        with self._lock:
            self._check_new_names(names)
            self._check_not_stored(ids)
            try:
                with self._embeddings.prepared(texts, vectors):
                    self._call("adding tools", self.store.add_texts, texts, metadatas=metadatas, ids=ids)
            except VectorStoreError:
                self._undo_add(ids)
                raise
            for tool, text, vector in zip(new_tools, texts, vectors):
                self._catalog.add(tool, screen=False)
                self._texts[tool.name] = text
                self._vectors[tool.name] = vector
            self._version += 1
            return ids

    def _metadata(self, tool: Tool, seq: int) -> dict[str, Any]:
        return {MARKER: RECORD_FORMAT_VERSION, "name": tool.name, "seq": seq,
                "tool": json.dumps(tool.to_dict(), ensure_ascii=False),
                "embedder": self.embedder.model_id, "dimension": self.embedder.dimension,
                "tool_text_version": TOOL_TEXT_VERSION}

    def _check_not_stored(self, ids: list[str]) -> None:
        """Names another process added to the store since this one read it (a write would overwrite them)."""
        try:
            found = self._call("looking up tool ids", self.store.get_by_ids, ids)
        except VectorStoreError as exc:
            if isinstance(exc.__cause__, NotImplementedError):
                return  # the store cannot tell; adds of the same name from two processes then overwrite
            raise
        clashes = sorted({str(d.metadata.get("name")) for d in found})
        if clashes:
            raise CatalogError(f"tool names already in {self._where} (added by another process? refresh() reads "
                               f"them): {', '.join(clashes)}")

    def _undo_add(self, ids: list[str]) -> None:
        try:
            self._call("undoing an add", self.store.delete, ids=ids)
        except VectorStoreError:  # the store failed already; report the first error
            logger.warning("could not undo a failed add in %s; refresh() shows what it holds", self._where)

    def remove(self, names: Iterable[str]) -> None:
        """Remove tools by name from the store; unknown names are an error and nothing is removed."""
        names = list(names)
        with self._lock:
            unknown = [n for n in names if n not in self._catalog]
            if unknown:
                raise CatalogError(f"no tool named {', '.join(map(repr, unknown))} in the index")
            if names:
                self._call("removing tools", self.store.delete, ids=[record_id(n) for n in names])
            for name in names:
                self._catalog.remove(name)
                del self._texts[name]
                del self._vectors[name]
            self._version += 1

    # ------------------------------------------------------------ search
    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[ScoredTool]]:
        """Nearest tools for each row of ``vectors``: the store's hits, scored by inner product here."""
        check_k(k)
        vectors = _checked_vectors(vectors, len(vectors), self.embedder.dimension, self.embedder)
        results = []
        for vector in vectors:
            with self._lock:
                if len(self) == 0:
                    raise CatalogError("the index holds no tools")
                limit, version = min(k, len(self)), self._version
            # outside the lock: a database round trip must not hold up other routes or edits
            documents = self._call("searching", self.store.similarity_search_by_vector, vector.tolist(), k=limit)
            with self._lock:
                found = []
                for document in documents:
                    name = (document.metadata or {}).get("name")
                    if name in self._vectors:
                        found.append(ScoredTool(self._catalog.get(name), float(np.dot(self._vectors[name], vector)),
                                                self._texts[name]))
                    elif self._version == version:  # else an edit of this index ran meanwhile (a removed tool)
                        self._note_unknown(name)
            found.sort(key=lambda s: -s.score)
            results.append(found)
        return results

    def _note_unknown(self, name: Any) -> None:
        if name not in self._unknown_seen:
            self._unknown_seen.add(name)
            logger.warning("%s returned %s, which this index has not read (added by another process since, or not "
                           "a gentool-router record): left out; refresh() reads the store again",
                           self._where, repr(name) if name else "a record without a tool name")

    def scored(self, name: str, vector: np.ndarray) -> ScoredTool | None:
        with self._lock:
            if name not in self._vectors:
                return None
            score = float(np.dot(self._vectors[name], np.asarray(vector, dtype=np.float32).ravel()))
            return ScoredTool(self._catalog.get(name), score, self._texts[name])

    # ------------------------------------------------------------- views
    @property
    def catalog(self) -> ToolCatalog:
        return self._catalog

    def tool_text(self, name: str) -> str:
        return self._texts[name]

    def lexical(self) -> LexicalIndex:
        """BM25 over the catalogue, in process, rebuilt on first use after tools were added, removed or refreshed."""
        with self._lock:
            if self._lexical is None or self._lexical[0] != self._version:
                self._lexical = (self._version, LexicalIndex(self._catalog))
            return self._lexical[1]

    def __len__(self) -> int:
        return len(self._catalog)

    def __contains__(self, name: object) -> bool:
        return name in self._catalog

    def __repr__(self) -> str:
        return f"VectorStoreIndex({len(self)} tools in {self._where}, embedder={self.embedder.model_id!r})"

    # ------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str], *, extra_files: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
        raise ConfigError(f"a VectorStoreIndex is kept in its vector store ({self._where}), written at every add and "
                          "remove: there is no folder to save; open the store again with VectorStoreIndex(store) or "
                          "ToolRouter.from_vectorstore(store)")

    def close(self) -> None:
        """Close the store's client where it has one (Qdrant: local mode locks its folder until then)."""
        close = getattr(getattr(self.store, "client", None), "close", None)
        if callable(close):
            close()

    # ----------------------------------------------------------- helpers
    def _call(self, operation: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call into the store, its failures as one :class:`VectorStoreError` line."""
        try:
            if self._store_lock is None:
                return function(*args, **kwargs)
            with self._store_lock:
                return function(*args, **kwargs)
        except GentoolError:
            raise
        except Exception as exc:
            raise VectorStoreError(f"{self._where}: {operation} failed: {_one_line(exc)}") from exc


def _in_process(store: VectorStore) -> bool:
    """Whether the store runs inside this process without locks of its own: LangChain's in-memory store, Qdrant's
    local mode (``QdrantClient(path=...)`` or ``":memory:"``)."""
    if isinstance(store, InMemoryVectorStore):
        return True
    options = getattr(getattr(store, "client", None), "init_options", None)
    return isinstance(options, dict) and (options.get("location") == ":memory:" or options.get("path") is not None)


def _seq(metadata: Mapping[str, Any]) -> int:
    seq = metadata.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def _describe(store: VectorStore) -> str:
    collection = getattr(store, "collection_name", None)
    return f"{type(store).__name__} collection {collection!r}" if collection else type(store).__name__


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------ Qdrant
def _qdrant() -> tuple[Any, Any, Any]:
    try:
        from langchain_qdrant import QdrantVectorStore
        from qdrant_client import QdrantClient, models
    except ImportError as exc:
        raise GentoolError(f"the Qdrant backend needs the 'vectorstore' extra: {EXTRA} ({exc})") from None
    return QdrantClient, QdrantVectorStore, models


def qdrant_store(
    collection: str = "gentool-router",
    *,
    path: str | os.PathLike[str] | None = None,
    url: str | None = None,
    location: str | None = None,
    client: Any = None,
    embedder: Embedder | None = None,
    create: bool = True,
    **client_options: Any,
) -> Any:
    """A ``langchain_qdrant.QdrantVectorStore`` over one Qdrant collection, embedding with the router's embedder.

    Give exactly one of ``path`` (local mode: a folder, one client at a time), ``location=":memory:"`` (local mode
    in this process), ``url`` (a Qdrant server, shared by any number of replicas; ``api_key=`` and other
    ``QdrantClient`` options go in ``client_options``) or ``client`` (a ``QdrantClient`` you made). The collection
    is created (one unnamed cosine vector per point) when missing and ``create`` is true.

    Raises:
        GentoolError: the ``vectorstore`` extra is not installed.
        VectorStoreError: the client cannot be opened (a local folder another client holds, a server that does
            not answer).
        IndexMismatchError: the collection's vectors are not the embedder's width, not cosine or dot product, or
            named vectors.
        IndexFormatError: the collection is missing and ``create`` is false.
    """
    QdrantClient, QdrantVectorStore, models = _qdrant()
    if sum(x is not None for x in (path, url, location, client)) != 1:
        raise ConfigError("give exactly one of path= (a local folder), url= (a Qdrant server), "
                          "location=':memory:' or client=")
    if not isinstance(collection, str) or not collection.strip():
        raise ConfigError(f"collection must be a non-empty string, got {collection!r}")
    embeddings = RouterEmbeddings(embedder)
    where = f"Qdrant collection {collection!r} at {path or url or location or 'the given client'}"
    own_client = client is None
    if own_client:
        try:
            if path is not None:
                client = QdrantClient(path=str(path), **client_options)
            elif url is not None:
                client = QdrantClient(url=url, **client_options)
            else:
                client = QdrantClient(location=location, **client_options)
        except Exception as exc:
            hint = (" (local mode lets one client at a time open a folder: close the other one, or run a Qdrant server "
                    "for several replicas)") if "already accessed" in str(exc) else ""
            raise VectorStoreError(f"cannot open {where}: {_one_line(exc)}{hint}") from exc
    try:
        if not client.collection_exists(collection):
            if not create:
                raise IndexFormatError(f"{where} does not exist (create=True makes it)")
            client.create_collection(collection, vectors_config=models.VectorParams(
                size=embeddings.embedder.dimension, distance=models.Distance.COSINE))
        params = client.get_collection(collection).config.params.vectors
        if isinstance(params, dict) or params is None:
            raise IndexMismatchError(f"{where} has named vectors ({', '.join(params or {})}): gentool-router needs a "
                                     "collection of its own with one unnamed vector a point")
        if params.size != embeddings.embedder.dimension:
            raise IndexMismatchError(f"{where} holds {params.size}-dimensional vectors, the embedder "
                                     f"{embeddings.model_id!r} gives {embeddings.embedder.dimension}: use another "
                                     "collection")
        if params.distance not in (models.Distance.COSINE, models.Distance.DOT):
            raise IndexMismatchError(f"{where} uses {params.distance} distance: gentool-router needs cosine or dot "
                                     "product (use another collection)")
        return QdrantVectorStore(client, collection, embedding=embeddings, distance=params.distance,
                                 validate_collection_config=False)
    except GentoolError:
        if own_client:
            client.close()
        raise
    except Exception as exc:
        if own_client:
            client.close()
        raise VectorStoreError(f"{where}: cannot open the collection: {_one_line(exc)}") from exc
