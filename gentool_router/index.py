"""FAISS retrieval over the canonical tool texts, persisted as a plain folder (docs/ARCHITECTURE.md, contract 4).

An index folder holds::

    index.faiss     FAISS IndexIDMap2(IndexFlatIP): inner product of unit vectors = cosine similarity
    tools.jsonl     one {"id": int, "tool": {...}} a line: the catalogue, with each tool's stable FAISS id
    manifest.json   format version, embedder id and dimension, tool-text version, counts, SHA-256 of each file

No pickle anywhere. Loading checks the manifest against the files and against the embedder and tool-text
version in use; any mismatch is a clear error instead of silently wrong retrieval.
"""

from __future__ import annotations

import json
import os
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .catalog import ToolCatalog
from .embedder import Embedder, MiniLMEmbedder
from .errors import CatalogError, IndexFormatError, IndexMismatchError, OverwriteRefusedError
from .index_base import BaseToolIndex, ScoredTool, check_k
from .jsonl import parse_object, read_lines
from .lexical import LexicalIndex
from .persistence import atomic_folder, recover_interrupted_save, sha256_file
from .poison import DEFAULT_POLICY, SUSPICIOUS_POLICIES, SuspiciousPolicy
from .settings import DEFAULT_K
from .tool_text import TOOL_TEXT_VERSION, render_tool
from .tools import Tool

__all__ = ["ToolIndex", "ScoredTool", "INDEX_FILE", "TOOLS_FILE", "MANIFEST_FILE"]

INDEX_FILE = "index.faiss"
TOOLS_FILE = "tools.jsonl"
MANIFEST_FILE = "manifest.json"
FORMAT_NAME = "gentool-router-index"
FORMAT_VERSION = 1
#: Catalogues at least this large show a progress bar while embedding.
PROGRESS_THRESHOLD = 256


def _faiss() -> Any:
    import faiss

    return faiss


def package_version() -> str:
    try:
        return metadata.version("gentool-router")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


class ToolIndex(BaseToolIndex):
    """Tools, their embeddings and a FAISS index with stable ids.

    Args:
        embedder: Embeds tool texts and queries; defaults to the packaged all-MiniLM-L6-v2.
        suspicious: Policy for instruction-like text in descriptions, applied before a tool is rendered and
            embedded (``"exclude"``, ``"neutralize"``, ``"warn"``, ``"allow"``; see :class:`ToolCatalog`). Saved in the manifest.

    Example:
        >>> index = ToolIndex.build([{"name": "get_weather", "description": "Weather forecast for a city"},
        ...                          {"name": "send_email", "description": "Send an email"}])
        >>> index.search("will it rain tomorrow?", k=1)[0].tool.name
        'get_weather'
    """

    def __init__(self, embedder: Embedder | None = None, *, suspicious: SuspiciousPolicy = DEFAULT_POLICY) -> None:
        self._catalog = ToolCatalog(suspicious=suspicious)
        self.embedder: Embedder = embedder if embedder is not None else MiniLMEmbedder()
        faiss = _faiss()
        self._faiss_index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.embedder.dimension))
        self._ids: dict[str, int] = {}
        self._texts: dict[str, str] = {}
        self._by_id: dict[int, str] = {}
        self._next_id = 0
        self._lock = threading.RLock()
        self._lexical: tuple[tuple[int, int], LexicalIndex] | None = None

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        tools: Iterable[Any] | ToolCatalog,
        embedder: Embedder | None = None,
        *,
        show_progress: bool | None = None,
        suspicious: SuspiciousPolicy | None = None,
    ) -> "ToolIndex":
        """Embed a whole catalogue. A progress bar shows by default from :data:`PROGRESS_THRESHOLD` tools.

        ``suspicious`` defaults to the policy of ``tools`` when it is a :class:`ToolCatalog` (whose tools were
        screened already), else to ``"exclude"``.
        """
        if isinstance(tools, ToolCatalog):
            catalog, policy = tools, suspicious or tools.suspicious
        else:
            policy = suspicious or DEFAULT_POLICY
            catalog = ToolCatalog.from_tools(tools, suspicious="allow")  # screened once, by index.add below
        if len(catalog) == 0:
            raise CatalogError("the tool catalogue is empty: give at least one tool")
        index = cls(embedder, suspicious=policy)
        index.add(list(catalog), show_progress=show_progress)
        if len(index) == 0:
            raise CatalogError("every tool was left out for instruction-like text (description, parameters, version): "
                               f"{', '.join(index.catalog.excluded)} (see suspicious= in the docs)")
        return index

    def add(self, tools: Iterable[Any], *, show_progress: bool | None = None) -> list[int]:
        """Add tools (any supported form) and return their new ids; existing names are an error. Tools the
        ``"exclude"`` policy leaves out get no id (``index.catalog.excluded`` lists them).

        Embedding runs outside the lock (routes go on meanwhile); names are checked before it, to fail fast,
        and again under the lock, where the tools are inserted, in case another thread added one meanwhile.
        """
        new_tools = [t for t in map(self._catalog.prepare, tools) if t is not None]
        self._check_new_names([t.name for t in new_tools])
        if not new_tools:
            return []
        texts = [render_tool(t) for t in new_tools]
        if show_progress is None:
            show_progress = len(texts) >= PROGRESS_THRESHOLD
        vectors = _checked_vectors(self.embedder.embed_documents(texts, show_progress=show_progress),
                                   len(texts), self._faiss_index.d, self.embedder)
        with self._lock:
            self._check_new_names([t.name for t in new_tools])
            ids = np.arange(self._next_id, self._next_id + len(new_tools), dtype=np.int64)
            self._faiss_index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            for tool, text, tool_id in zip(new_tools, texts, ids.tolist()):
                self._catalog.add(tool, screen=False)
                self._ids[tool.name] = tool_id
                self._by_id[tool_id] = tool.name
                self._texts[tool.name] = text
            self._next_id += len(new_tools)
            return ids.tolist()

    def remove(self, names: Iterable[str]) -> None:
        """Remove tools by name; unknown names are an error and nothing is removed."""
        names = list(names)
        with self._lock:
            unknown = [n for n in names if n not in self._ids]
            if unknown:
                raise CatalogError(f"no tool named {', '.join(map(repr, unknown))} in the index")
            ids = np.array([self._ids[n] for n in names], dtype=np.int64)
            self._faiss_index.remove_ids(ids)
            for name in names:
                self._catalog.remove(name)
                del self._by_id[self._ids.pop(name)]
                del self._texts[name]

    # ----------------------------------------------------------------- search
    def search(self, query: str, k: int = DEFAULT_K) -> list[ScoredTool]:
        """The ``k`` tools nearest to ``query`` (fewer if the index holds fewer), best first."""
        return self.search_vectors(self.embedder.embed_queries([query]), k)[0]

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[ScoredTool]]:
        """Nearest tools for each row of ``vectors`` (already embedded queries)."""
        check_k(k)
        vectors = _checked_vectors(vectors, len(vectors), self._faiss_index.d, self.embedder)
        with self._lock:
            if len(self) == 0:
                raise CatalogError("the index holds no tools")
            scores, ids = self._faiss_index.search(np.ascontiguousarray(vectors, dtype=np.float32), min(k, len(self)))
            return [
                [
                    ScoredTool(self._catalog.get(name), float(s), self._texts[name])
                    for s, name in ((s, self._by_id[int(i)]) for s, i in zip(row_scores, row_ids) if i >= 0)
                ]
                for row_scores, row_ids in zip(scores, ids)
            ]

    def scored(self, name: str, vector: np.ndarray) -> ScoredTool | None:
        """One tool scored against an embedded query (a candidate found by BM25 rather than by FAISS), or None if
        the tool is no longer in the index."""
        with self._lock:
            if name not in self._ids:
                return None
            stored = self._faiss_index.reconstruct(self._ids[name])
            score = float(np.dot(stored, np.asarray(vector, dtype=np.float32).ravel()))
            return ScoredTool(self._catalog.get(name), score, self._texts[name])

    # ------------------------------------------------------------------ views
    @property
    def catalog(self) -> ToolCatalog:
        return self._catalog

    @property
    def suspicious(self) -> SuspiciousPolicy:
        """The policy applied to instruction-like text in the descriptions of tools added to this index."""
        return self._catalog.suspicious

    def tool_text(self, name: str) -> str:
        """The canonical text of a tool in the index (what was embedded and what the selector sees)."""
        return self._texts[name]

    def lexical(self) -> LexicalIndex:
        """BM25 over this catalogue (``lexical.py``), rebuilt on first use after tools were added or removed."""
        with self._lock:
            version = (len(self), self._next_id)  # changes with every add and every remove
            if self._lexical is None or self._lexical[0] != version:
                self._lexical = (version, LexicalIndex(self._catalog))
            return self._lexical[1]

    def tool_id(self, name: str) -> int:
        return self._ids[name]

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def __repr__(self) -> str:
        return f"ToolIndex({len(self)} tools, embedder={self.embedder.model_id!r})"

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str], *, extra_files: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
        """Write the index folder atomically; ``extra_files`` (name → JSON object) are saved and checksummed too."""
        extra_files = dict(extra_files or {})
        reserved = {INDEX_FILE, TOOLS_FILE, MANIFEST_FILE} & set(extra_files)
        if reserved:
            raise ValueError(f"extra file names clash with index files: {sorted(reserved)}")

        def write(folder: Path) -> None:
            with self._lock:
                _faiss().write_index(self._faiss_index, str(folder / INDEX_FILE))
                with (folder / TOOLS_FILE).open("w", encoding="utf-8") as handle:
                    for tool in self._catalog:
                        record = {"id": self._ids[tool.name], "tool": tool.to_dict()}
                        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                for name, content in extra_files.items():
                    (folder / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
                files = [INDEX_FILE, TOOLS_FILE, *sorted(extra_files)]
                manifest = {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "created_with": f"gentool-router {package_version()}",
                    "embedder": {"model_id": self.embedder.model_id, "dimension": self.embedder.dimension},
                    "tool_text_version": TOOL_TEXT_VERSION,
                    "suspicious": self.suspicious,
                    "count": len(self),
                    "next_id": self._next_id,
                    "files": {
                        name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
                        for name in files
                    },
                }
                (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")

        try:
            return atomic_folder(path, write, owned_files=index_owned_files, kind="gentool-router index")
        except OverwriteRefusedError:
            raise
        except OSError as exc:
            raise IndexFormatError(f"cannot save the index to {path}: {exc.strerror or exc}") from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str], embedder: Embedder | None = None) -> "ToolIndex":
        """Load an index folder written by :meth:`save`.

        Raises:
            IndexFormatError: missing folder or file, unreadable manifest, checksum mismatch, corrupt FAISS file.
            IndexMismatchError: the folder was built with another embedder or tool-text version.
        """
        folder = Path(path)
        recover_interrupted_save(folder)
        manifest = read_manifest(folder)
        # Tools are stored as screened when they were added: loading never screens them again (their text must
        # stay the one that was embedded); the saved policy applies to tools added from now on.
        index = cls(embedder, suspicious=manifest.get("suspicious", DEFAULT_POLICY))
        stored = manifest["embedder"]
        if stored.get("model_id") != index.embedder.model_id or stored.get("dimension") != index.embedder.dimension:
            raise IndexMismatchError(
                f"{folder} was built with embedder {stored.get('model_id')!r} ({stored.get('dimension')} dims), "
                f"but the router uses {index.embedder.model_id!r} ({index.embedder.dimension} dims): "
                "rebuild it with `gentool-router index` or pass the matching embedder"
            )
        if manifest.get("tool_text_version") != TOOL_TEXT_VERSION:
            raise IndexMismatchError(
                f"{folder} was built with tool-text version {manifest.get('tool_text_version')!r}, this gentool-router "
                f"renders version {TOOL_TEXT_VERSION!r}: rebuild the index with `gentool-router index`"
            )
        try:
            faiss_index = _faiss().read_index(str(folder / INDEX_FILE))
        except RuntimeError as exc:
            raise IndexFormatError(f"{folder / INDEX_FILE} is not a readable FAISS index") from exc
        records = _read_tool_records(folder / TOOLS_FILE)
        if faiss_index.ntotal != len(records) or faiss_index.d != index.embedder.dimension:
            raise IndexFormatError(
                f"{folder}: FAISS index has {faiss_index.ntotal} vectors of {faiss_index.d} dims, "
                f"but tools.jsonl has {len(records)} tools for {index.embedder.dimension} dims"
            )
        index._faiss_index = faiss_index
        for tool_id, tool in records:
            index._catalog.add(tool, screen=False)
            index._ids[tool.name] = tool_id
            index._by_id[tool_id] = tool.name
            index._texts[tool.name] = render_tool(tool)
        index._next_id = int(manifest.get("next_id", max((i for i, _ in records), default=-1) + 1))
        return index


def index_owned_files(folder: Path) -> set[str] | None:
    """The files of an earlier index in ``folder`` (its manifest and the files it lists), or None if not one.

    A save replaces such a folder only when it holds nothing else (see :func:`persistence.atomic_folder`).
    """
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        return None
    files = manifest.get("files")
    return {MANIFEST_FILE, *(files if isinstance(files, dict) else {})}


def _checked_vectors(vectors: Any, rows: int, dimension: int, embedder: Embedder) -> np.ndarray:
    """``vectors`` as a float32 ``(rows, dimension)`` array, or a clear error: FAISS itself only asserts."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape != (rows, dimension):
        raise IndexMismatchError(
            f"embedder {embedder.model_id!r} returned vectors of shape {array.shape}, but the index holds "
            f"{dimension}-dimensional vectors ({rows} expected): its 'dimension' ({embedder.dimension}) must be the "
            "width of the vectors it returns"
        )
    return array


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and verify an index folder's manifest and checksums (without loading anything heavy)."""
    if not folder.is_dir():
        raise IndexFormatError(f"index folder not found: {folder}")
    manifest_path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexFormatError(f"{folder} is not an index folder: {MANIFEST_FILE} is missing") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{manifest_path} is corrupt: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{manifest_path} is not a gentool-router index manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{folder} has index format version {manifest.get('format_version')}, this gentool-router reads "
            f"version {FORMAT_VERSION}: rebuild the index with `gentool-router index`"
        )
    if not isinstance(manifest.get("embedder"), dict):
        raise IndexFormatError(f"{manifest_path} does not name the embedder the index was built with")
    if not isinstance(manifest.get("next_id", 0), int) or manifest.get("suspicious", DEFAULT_POLICY) not in SUSPICIOUS_POLICIES:
        raise IndexFormatError(f"{manifest_path} has an invalid 'next_id' or 'suspicious' entry")
    files = manifest.get("files")
    if not isinstance(files, dict) or INDEX_FILE not in files or TOOLS_FILE not in files:
        raise IndexFormatError(f"{manifest_path} does not list the index files")
    for name, info in files.items():
        file_path = folder / name
        if not file_path.is_file():
            raise IndexFormatError(f"{folder}: {name} is missing")
        if not isinstance(info, dict) or sha256_file(file_path) != info.get("sha256"):
            raise IndexFormatError(f"{file_path} does not match its checksum in {MANIFEST_FILE}: the file is corrupt or was edited")
    return manifest


def _read_tool_records(path: Path) -> list[tuple[int, Tool]]:
    records: list[tuple[int, Tool]] = []
    for number, line in read_lines(path, "index tool", error=IndexFormatError):
        try:
            data = parse_object(line, "tool record")
            records.append((int(data["id"]), Tool.from_dict(data["tool"])))
        except (ValueError, KeyError, TypeError, CatalogError) as exc:
            raise IndexFormatError(f"{path}:{number}: bad tool record ({exc})") from None
    return records

