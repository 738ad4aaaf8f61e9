"""gentool-router: local, offline tool routing for LLM agents.

FAISS retrieves candidate tools for a query; a small GenTool-trained selector model (llama.cpp) picks the
strongest applicable tool, or none.

Example:
    >>> from gentool_router import ToolRouter
    >>> router = ToolRouter.from_tools(my_tools)          # LangChain tools, functions or dicts
    >>> router.route("Book a table for two tonight").tool
"""

from __future__ import annotations

from .catalog import ToolCatalog, load_tools_jsonl
from .decision import DecisionMismatchError, DecisionModel
from .errors import (
    CatalogError,
    ConfigError,
    GentoolError,
    IndexFormatError,
    IndexMismatchError,
    ModelLoadError,
    ModelNotFoundError,
    OverwriteRefusedError,
    QueryError,
    SelectorError,
    ToolValidationError,
    VectorStoreError,
)
from .evidence import RouteEvidence
from .index import ToolIndex
from .index_base import BaseToolIndex
from .results import Candidate, Choice, Route, Selection, StageTimings
from .router import ToolRouter
from .selector import LlamaSelector, RetrievalSelector
from .tool_text import TOOL_TEXT_VERSION, render_tool
from .tools import NO_TOOL, Tool

__version__ = "0.1.0"

__all__ = [
    "ToolRouter",
    "ToolIndex",
    "BaseToolIndex",
    "ToolCatalog",
    "Tool",
    "LlamaSelector",
    "RetrievalSelector",
    "Route",
    "Candidate",
    "Choice",
    "Selection",
    "StageTimings",
    "render_tool",
    "load_tools_jsonl",
    "NO_TOOL",
    "TOOL_TEXT_VERSION",
    "GentoolError",
    "ToolValidationError",
    "CatalogError",
    "IndexFormatError",
    "IndexMismatchError",
    "ModelNotFoundError",
    "ModelLoadError",
    "QueryError",
    "SelectorError",
    "ConfigError",
    "OverwriteRefusedError",
    "VectorStoreError",
    "DecisionModel",
    "DecisionMismatchError",
    "RouteEvidence",
]
