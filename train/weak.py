"""Weak variants of a tool, by the GenTool paper's criteria, made by our own rules.

A weak variant is less effective on the target's queries by construction: its description is a strict
prefix of the strong one (shorter and vaguer), its arguments and returned fields are subsets (an argument
the query's call needs may be missing), and its name may match the problem less well. It never gains
anything the strong tool lacks, which :func:`is_weaker` checks.
"""

from __future__ import annotations

import random
import re
from typing import Iterable

from gentool_router.tools import Tool

__all__ = ["make_weak_variant", "is_weaker", "neutral_pair_names", "CRITERIA", "NEUTRAL_SUFFIXES"]

CRITERIA = ("name", "description", "parameters", "returns")
#: What a renamed copy of a tool gets appended, drawn alike for the strong and the weak side of a pair, so no
#: suffix tells which side is which (``generate-data --neutral-pairs``).
NEUTRAL_SUFFIXES = ("2", "_2", "V2", "_v2", "_alt", "_b", "Ex", "_new", "_x", "Pro", "Lite", "Basic", "Plus",
                    "_legacy", "_one", "Tool")


def _words_of_name(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ")
    return [w for w in spaced.split() if w]


def _unique(base: str, taken: set[str]) -> str:
    candidate, suffix = base, 2
    while candidate in taken:
        candidate = f"{base}{suffix}"
        suffix += 1
    return candidate


def _weak_name(name: str, taken: set[str]) -> str:
    words = _words_of_name(name)
    if len(words) >= 3:
        base = words[0].lower() + words[-1][:1].upper() + words[-1][1:]
    elif len(words) == 2:
        base = words[0].lower() + "Info"
    else:
        base = name + "Basic"
    return _unique((base if base != name else base + "Basic")[:60], taken)


def neutral_pair_names(name: str, rng: random.Random, taken: set[str]) -> tuple[str, str]:
    """Names for the strong and the weak side of a pair made from the tool ``name``: one side keeps it, the other
    gets a suffix from :data:`NEUTRAL_SUFFIXES`; which side keeps it is a coin toss, so a name alone is no clue."""
    renamed = _unique(f"{name[:60]}{rng.choice(NEUTRAL_SUFFIXES)}", taken)
    return (name, renamed) if rng.random() < 0.5 else (renamed, name)


def make_weak_variant(tool: Tool, rng: random.Random, taken: set[str], needed_arguments: Iterable[str] = (),
                      *, rename: bool = True) -> tuple[Tool, list[str]]:
    """A weaker copy of ``tool`` and the criteria applied (always ``description`` or ``parameters``).

    With ``rename=False`` the copy keeps ``tool``'s name and ``name`` is never a criterion: the caller names both
    sides (:func:`neutral_pair_names`).

    Args:
        tool: The strong tool.
        rng: Source of randomness (the caller's seeded generator).
        taken: Names already in use; the variant's name avoids them.
        needed_arguments: Arguments the query's gold call uses; dropping one of them makes the weak tool
            unable to serve the query fully.
    """
    properties = dict(tool.parameters.get("properties", {}))
    words = tool.description.split()
    can = {
        "description": len(words) >= 2,
        "parameters": len(properties) >= 1,
        "returns": bool(tool.returns) and len(tool.returns) >= 2,
    }
    chosen = [c for c in ("name", "description", "parameters", "returns") if (c == "name" and rename) or can.get(c)]
    chosen = [c for c in chosen if rng.random() < 0.5]
    core = [c for c in ("description", "parameters") if can[c]]
    if not any(c in core for c in chosen):
        chosen.append(rng.choice(core) if core else "name" if rename else "description")
    description = tool.description
    if "description" in chosen:
        keep = max(1, min(len(words) - 1, (len(words) + 1) // 2))
        description = " ".join(words[:keep])
    required = list(tool.parameters.get("required", []))
    if "parameters" in chosen:
        needed = [a for a in needed_arguments if a in properties]
        drop = rng.choice(needed) if needed else list(properties)[-1]
        extra = [p for p in properties if p != drop and p not in needed]
        drops = {drop} | ({rng.choice(extra)} if extra and rng.random() < 0.5 else set())
        properties = {k: v for k, v in properties.items() if k not in drops}
        required = [r for r in required if r in properties]
    returns = tool.returns
    if "returns" in chosen and returns:
        fields = list(returns)
        returns = {k: returns[k] for k in fields[: len(fields) // 2]}
    if not rename:
        name = tool.name
    else:
        name = _weak_name(tool.name, taken) if "name" in chosen else _unique(f"{tool.name[:60]}_alt", taken)
    weak = Tool(name, description, {"type": "object", "properties": properties, "required": required}, returns=returns)
    return weak, sorted(chosen, key=CRITERIA.index)


def is_weaker(weak: Tool, strong: Tool) -> bool:
    """True when ``weak`` has nothing ``strong`` lacks and is strictly less in description or arguments."""
    strong_words, weak_words = strong.description.split(), weak.description.split()
    prefix = weak_words == strong_words[: len(weak_words)]
    params_subset = set(weak.parameter_names()) <= set(strong.parameter_names())
    returns_subset = set(weak.returns or {}) <= set(strong.returns or {})
    strictly = len(weak_words) < len(strong_words) or len(weak.parameter_names()) < len(strong.parameter_names())
    return prefix and params_subset and returns_subset and strictly and weak.name != strong.name
