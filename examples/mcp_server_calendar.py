"""A second small MCP server of ours (stdio): an in-memory calendar, for ``mcp_gateway.py`` and the tests.

    .venv/bin/python examples/mcp_server_calendar.py     # speaks MCP on stdin/stdout; normally started by a client

Next to ``mcp_server.py`` (the desk tools) it makes a gateway's catalogue of two servers. Both have a tool named
``current_time``, so a gateway in front of them shows ``desk/current_time`` and ``calendar/current_time``. Events
live as long as the server process; nothing touches the network.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server.fastmcp import FastMCP

server = FastMCP("calendar-tools", log_level="WARNING")

_EVENTS: list[dict[str, str | int]] = []


@server.tool()
def create_event(title: str, date: str, start: str, minutes: int = 60) -> str:
    """Add an event or appointment to the calendar on a date (YYYY-MM-DD) at a start time (HH:MM)."""
    day, begins = dt.date.fromisoformat(date), dt.time.fromisoformat(start)  # a bad date is the caller's error
    if not 1 <= minutes <= 24 * 60:
        raise ValueError("minutes must be between 1 and 1440")
    _EVENTS.append({"title": title, "date": day.isoformat(), "start": begins.strftime("%H:%M"), "minutes": minutes})
    return f"created {title!r} on {day.isoformat()} at {begins.strftime('%H:%M')} ({len(_EVENTS)} events)"


@server.tool()
def list_events(date: str) -> list[dict[str, str | int]]:
    """The calendar's events and appointments on one day (YYYY-MM-DD), earliest first."""
    day = dt.date.fromisoformat(date).isoformat()
    return sorted((e for e in _EVENTS if e["date"] == day), key=lambda e: str(e["start"]))


@server.tool()
def cancel_event(title: str, date: str) -> str:
    """Cancel (delete) a calendar event by its title and date."""
    before = len(_EVENTS)
    _EVENTS[:] = [e for e in _EVENTS if not (e["title"] == title and e["date"] == date)]
    if len(_EVENTS) == before:
        raise ValueError(f"no event {title!r} on {date}")
    return f"cancelled {title!r} on {date}"


@server.tool()
def current_time(timezone: str) -> dict[str, str]:
    """Today's date, the weekday and the time of day in an IANA time zone, as the calendar counts them."""
    try:
        now = dt.datetime.now(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    return {"date": now.date().isoformat(), "weekday": now.strftime("%A"), "time": now.strftime("%H:%M")}


if __name__ == "__main__":
    server.run()  # stdio
