"""Route a few queries over the bundled example catalogue with the Python API, and add an improved tool at
run time (it is routable at once, no rebuild).

    .venv/bin/python examples/route_example_catalog.py
"""

from __future__ import annotations

from gentool_router import Tool, ToolRouter
from gentool_router.examples import example_tools


def main() -> None:
    router = ToolRouter.from_tools(example_tools())
    for query in ["Will it rain in Lisbon over the next three days?", "Write a haiku about autumn leaves"]:
        route = router.route(query)
        print(f"{query!r} -> {route.name}  ({', '.join(f'{c.name} {c.score:.2f}' for c in route.ranking[:3])})")

    router.add_tools([Tool(
        "get_air_quality_v2",
        "Air quality index, pollutants (PM2.5, ozone, NO2) and health advice for any city, now and for 3 days.",
        {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
        version="2",
    )])
    route = router.route("Is the air in Delhi safe for running tomorrow?")
    print(f"after adding get_air_quality_v2: candidates {[c.name for c in route.candidates]} -> {route.name}")


if __name__ == "__main__":
    main()
