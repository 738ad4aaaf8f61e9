"""Weak to strong: an improved tool added at run time takes over from the weak one it supersedes.

    .venv/bin/python examples/weak_to_strong.py

The bundled catalogue holds a weak ``get_weather`` (current temperature only). The router first routes a
forecast question without the strong tool (the weak tool cannot answer it: the router may give it, or no tool),
then ``get_weather_forecast`` is added with ``router.add_tools`` (no rebuild) and the same question is routed again.
"""

from __future__ import annotations

from typing import Any

from gentool_router import Route, ToolRouter
from gentool_router.examples import example_tools

QUERY = "Will it rain in Lisbon over the next three days?"
WEAK, STRONG = "get_weather", "get_weather_forecast"


def weak_then_strong(query: str = QUERY, **router_options: Any) -> tuple[Route, Route]:
    """Routes ``query`` before and after the strong tool is added; returns both routes."""
    catalog = example_tools()
    strong = catalog.remove(STRONG)
    router = ToolRouter.from_tools(catalog, **router_options)
    before = router.route(query)
    router.add_tools([strong])
    return before, router.route(query)


def _describe(route: Route) -> str:
    ranking = ", ".join(f"{c.name} {c.score:.2f}" for c in route.ranking[:3])
    return f"{route.name}  (ranking: {ranking})"


def main() -> None:
    before, after = weak_then_strong()
    print(f"query: {QUERY}")
    print(f"  only the weak {WEAK}:          {_describe(before)}")
    print(f"  after adding {STRONG}: {_describe(after)}")


if __name__ == "__main__":
    main()
