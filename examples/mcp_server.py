"""A small MCP server of ours (stdio) with offline desk tools, for ``mcp_tools.py`` and the tests.

    .venv/bin/python examples/mcp_server.py        # speaks MCP on stdin/stdout; normally started by a client

Every tool does its work for real (no network): date arithmetic, unit conversion, safe arithmetic, text
statistics, time zones, hashing, passwords, and a note store that lives as long as the server process. The note
tools have dotted, namespaced names (``notes.save``, ``notes.list``), as the MCP specification allows: they route
under those names.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import operator
import re
import secrets
import string
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server.fastmcp import FastMCP

server = FastMCP("desk-tools", log_level="WARNING")

# Units by dimension, as factors to the dimension's base unit (metre, kilogram, litre).
_UNITS = {
    "length": {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "yd": 0.9144,
               "mi": 1609.344},
    "mass": {"g": 0.001, "kg": 1.0, "t": 1000.0, "oz": 0.028349523125, "lb": 0.45359237},
    "volume": {"ml": 0.001, "l": 1.0, "gal": 3.785411784, "qt": 0.946352946, "cup": 0.2365882365},
}
_ALIASES = {"millimeters": "mm", "centimeters": "cm", "meters": "m", "metres": "m", "kilometers": "km",
            "kilometres": "km", "inches": "in", "feet": "ft", "yards": "yd", "miles": "mi", "grams": "g",
            "kilograms": "kg", "tonnes": "t", "ounces": "oz", "pounds": "lb", "liters": "l", "litres": "l",
            "milliliters": "ml", "gallons": "gal", "quarts": "qt", "cups": "cup"}
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow, ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv,
              ast.USub: operator.neg, ast.UAdd: operator.pos}
_NOTES: dict[str, str] = {}


@server.tool()
def days_between(start_date: str, end_date: str) -> int:
    """Count the days between two calendar dates given as YYYY-MM-DD (negative if the end is earlier)."""
    return (dt.date.fromisoformat(end_date) - dt.date.fromisoformat(start_date)).days


@server.tool()
def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length, mass, volume or temperature between units such as km and miles, kg and pounds,
    litres and gallons, or celsius and fahrenheit."""
    source, target = _unit(from_unit), _unit(to_unit)
    temperatures = {"c", "f", "k"}
    if source in temperatures and target in temperatures:
        celsius = {"c": value, "f": (value - 32) * 5 / 9, "k": value - 273.15}[source]
        return round({"c": celsius, "f": celsius * 9 / 5 + 32, "k": celsius + 273.15}[target], 6)
    for factors in _UNITS.values():
        if source in factors and target in factors:
            return round(value * factors[source] / factors[target], 6)
    raise ValueError(f"cannot convert {from_unit!r} to {to_unit!r}")


@server.tool()
def calculate(expression: str) -> float:
    """Evaluate an arithmetic expression with + - * / ** % and parentheses, e.g. '0.175 * 2340'."""
    return _evaluate(ast.parse(expression.replace(",", ""), mode="eval").body)


@server.tool()
def text_statistics(text: str) -> dict[str, int]:
    """Count the words, characters and sentences of a text."""
    return {"words": len(text.split()), "characters": len(text),
            "sentences": len([s for s in re.split(r"[.!?]+", text) if s.strip()])}


@server.tool()
def current_time(timezone: str) -> str:
    """The current date and time in an IANA time zone such as Europe/Lisbon or Asia/Tokyo."""
    try:
        return dt.datetime.now(ZoneInfo(timezone)).isoformat(timespec="seconds")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc


@server.tool()
def hash_text(text: str, algorithm: str = "sha256") -> str:
    """The hexadecimal digest of a text with a hash algorithm such as sha256, sha1 or md5."""
    return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()


@server.tool()
def generate_password(length: int = 16) -> str:
    """Generate a random password of letters, digits and punctuation."""
    if not 8 <= length <= 128:
        raise ValueError("length must be between 8 and 128")
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*-_"
    return "".join(secrets.choice(alphabet) for _ in range(length))


@server.tool(name="notes.save")
def save_note(title: str, body: str) -> str:
    """Save a short note under a title, replacing any note with the same title."""
    _NOTES[title] = body
    return f"saved note {title!r} ({len(_NOTES)} notes)"


@server.tool(name="notes.list")
def read_notes() -> dict[str, str]:
    """All saved notes by title."""
    return dict(_NOTES)


def _unit(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return {"celsius": "c", "fahrenheit": "f", "kelvin": "k"}.get(key, key)


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError("only numbers, + - * / ** % // and parentheses are allowed")


if __name__ == "__main__":
    server.run()  # stdio
