"""The one canonical text of a tool (docs/ARCHITECTURE.md, contract 1).

The same string is embedded into the FAISS index *and* shown to the selector, in training and at inference.
Its format is versioned: :data:`TOOL_TEXT_VERSION` is stored in every index manifest and every trained model,
and a mismatch is refused rather than silently costing accuracy. Change the format only together with the
version.

Format (chosen for the selector's prompt budget: every prompt token costs milliseconds on a CPU)::

    name(arg1, arg2, opt?) -> field1, field2 [v2 replaces old_name]: description

* arguments by name in schema order, optional ones marked ``?``; types are left out (names carry the meaning
  and types cost tokens), at most :data:`MAX_PARAMETERS` shown;
* returned field names when the tool declares them, at most :data:`MAX_RETURNS`;
* version metadata as a short bracketed hint, only when present;
* the description, whitespace-collapsed and cut at :data:`MAX_DESCRIPTION_WORDS` words.
"""

from __future__ import annotations

from .tools import Tool

__all__ = ["TOOL_TEXT_VERSION", "render_tool", "MAX_DESCRIPTION_WORDS", "MAX_PARAMETERS", "MAX_RETURNS"]

#: Bump whenever :func:`render_tool`'s output changes for any tool.
TOOL_TEXT_VERSION = "1"

MAX_DESCRIPTION_WORDS = 28
MAX_PARAMETERS = 6
MAX_RETURNS = 3


def render_tool(tool: Tool) -> str:
    """Render ``tool`` to its canonical one-line text.

    Example:
        >>> from gentool_router.tools import Tool
        >>> render_tool(Tool("get_weather", "Current weather for a city.", {"type": "object",
        ...     "properties": {"city": {}, "units": {}}, "required": ["city"]}))
        'get_weather(city, units?): Current weather for a city.'
    """
    required = set(tool.required_parameters())
    names = tool.parameter_names()
    shown = [n if n in required else f"{n}?" for n in names[:MAX_PARAMETERS]]
    if len(names) > MAX_PARAMETERS:
        shown.append("...")
    text = f"{tool.name}({', '.join(shown)})"
    if tool.returns:
        fields = list(tool.returns)[:MAX_RETURNS]
        if len(tool.returns) > MAX_RETURNS:
            fields.append("...")
        text += " -> " + ", ".join(fields)
    hint = _version_hint(tool)
    if hint:
        text += f" [{hint}]"
    return f"{text}: {_shorten(tool.description, MAX_DESCRIPTION_WORDS)}"


def _version_hint(tool: Tool) -> str:
    parts = []
    if tool.version:
        parts.append(f"v{tool.version}" if tool.version[0].isdigit() else tool.version)
    if tool.supersedes:
        parts.append(f"replaces {tool.supersedes}")
    if tool.deprecated:
        parts.append("deprecated")
    return " ".join(parts)


def _shorten(text: str, max_words: int) -> str:
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words]) + " ..."
