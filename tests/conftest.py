"""Shared fixtures: real models are loaded once per session (they are the slow part)."""

from __future__ import annotations

import pytest

from gentool_router import Tool

WEATHER = Tool(
    "get_weather_forecast",
    "Weather forecast for a city: temperature, rain and wind for the next days.",
    {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
)
EMAIL = Tool(
    "send_email",
    "Send an email with a subject and body to a recipient.",
    {"type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}},
     "required": ["to", "body"]},
)
CALENDAR = Tool(
    "create_calendar_event",
    "Create a calendar event with a title, start time and duration.",
    {"type": "object", "properties": {"title": {}, "start": {}, "minutes": {}}, "required": ["title", "start"]},
)
STOCK = Tool(
    "get_stock_price",
    "Latest stock price of a company by ticker symbol.",
    {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
)
TRANSLATE = Tool(
    "translate_text",
    "Translate text from one language into another.",
    {"type": "object", "properties": {"text": {}, "target_language": {}}, "required": ["text", "target_language"]},
)
RECIPES = Tool(
    "search_recipes",
    "Find cooking recipes by ingredient or dish name.",
    {"type": "object", "properties": {"ingredients": {"type": "array"}}, "required": ["ingredients"]},
)

SMALL_TOOLS = [WEATHER, EMAIL, CALENDAR, STOCK, TRANSLATE, RECIPES]


@pytest.fixture(scope="session")
def small_tools() -> list[Tool]:
    return list(SMALL_TOOLS)


@pytest.fixture(scope="session")
def embedder():
    from gentool_router.embedder import MiniLMEmbedder

    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def selector():
    from gentool_router import LlamaSelector

    selector = LlamaSelector(n_threads=2)
    yield selector
    selector.close()
