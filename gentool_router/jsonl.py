"""The one reader of JSON-lines files: a user's tools, eval cases, calibration labels and own-catalogue queries,
and an index's ``tools.jsonl``.

Each caller checks its own fields; what every JSONL file shares lives here, so the answers agree: a missing file,
text that is not UTF-8, a line that is not JSON or not an object, each named by file and line. Lines are split on
``"\\n"`` only (``str.splitlines`` would also cut at U+2028 and other separators a JSON string may hold raw).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from .errors import CatalogError, GentoolError

__all__ = ["read_lines", "parse_object", "problems_message", "listing"]


def read_lines(path: str | os.PathLike[str], kind: str, *,
               error: type[GentoolError] = CatalogError) -> list[tuple[int, str]]:
    """The non-blank lines of ``path`` with their 1-based numbers.

    ``kind`` names the file in errors ("tool file not found: ..."); ``error`` is the class raised for a missing
    file or text that is not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{kind} file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return [(number, line.rstrip("\r")) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def parse_object(line: str, what: str = "line", *,
                 not_object: type[GentoolError] = CatalogError) -> dict[str, Any]:
    """One line's JSON object, or a :class:`CatalogError` saying why not (without the file and line, which the
    caller adds); valid JSON that is not an object raises ``not_object``."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise CatalogError("JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise not_object(f"a {what} must be a JSON object")
    return data


def listing(problems: Sequence[str], shown: int = 20) -> str:
    """``"file:2: why; file:5: why; and 3 more"``: the first ``shown`` problems on one line, then a count."""
    return "; ".join(problems[:shown]) + (f"; and {len(problems) - shown} more" if len(problems) > shown else "")


def problems_message(problems: Sequence[str], what: str, shown: int = 20) -> str:
    """``"3 bad query lines: file:2: why; file:5: why; ..."``: every problem of a file in one message, the first
    ``shown`` of them listed."""
    return f"{len(problems)} bad {what} line{'s' if len(problems) != 1 else ''}: {listing(problems, shown)}"
