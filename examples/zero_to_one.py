"""Zero to one: no tool fits, so the router says ``generate_response``; then a fitting tool is added at run time.

    .venv/bin/python examples/zero_to_one.py

The bundled catalogue without its translation tools has nothing for a translation request; then
``translate_text_v2`` is added with ``router.add_tools`` (no rebuild) and becomes the answer: with the shipped
selector (gentool-v11) it takes 0.75 of the probability against 0.06 for ``generate_response`` (measured
2026-12-05; the v2 selector of 2026-11-23 ranked it first but lost to ``generate_response``, 0.49 against 0.38,
``TRAINING.md``, "Known limitations"). The printed ranking shows both.
"""

from __future__ import annotations

from typing import Any

from gentool_router import Route, ToolRouter
from gentool_router.examples import example_tools

QUERY = "Translate 'Guten Morgen, wie geht es dir?' from German into Japanese"
TRANSLATION_TOOLS = ("translate_text", "translate_text_v2", "translateSpanish")
ADDED = "translate_text_v2"


def without_then_with(query: str = QUERY, **router_options: Any) -> tuple[Route, Route]:
    """Routes ``query`` over a catalogue with no translation tool, then again after adding one."""
    catalog = example_tools()
    removed = {name: catalog.remove(name) for name in TRANSLATION_TOOLS}
    router = ToolRouter.from_tools(catalog, **router_options)
    before = router.route(query)
    router.add_tools([removed[ADDED]])
    return before, router.route(query)


def main() -> None:
    before, after = without_then_with()
    print(f"query: {QUERY}")
    print(f"  no translation tool:   {before.name}  (nearest candidates: {[c.name for c in before.candidates[:3]]})")
    ranking = ", ".join(f"{c.name} {c.score:.2f}" for c in after.ranking[:3])
    print(f"  after adding {ADDED}: {after.name}  (ranking: {ranking})")


if __name__ == "__main__":
    main()
