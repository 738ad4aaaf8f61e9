"""The text routed for a conversation: the user's latest message, optionally with the ones before it.

In a dialogue the right tool is often clear only from several user turns ("Book it for Friday" after "Is the
Hilton in Lisbon free?"). The LangChain middleware and the API-Bank conversation set of the real-catalogue suite
route the same text, made here.
"""

from __future__ import annotations

from typing import Sequence

from .settings import DEFAULT_CONTEXT_TURNS

__all__ = ["routing_text", "MAX_CONTEXT_CHARS"]

#: Earlier user turns are cut so the routed text stays short (the selector reads the query's start).
MAX_CONTEXT_CHARS = 600


def routing_text(user_messages: Sequence[str], turns: int = DEFAULT_CONTEXT_TURNS) -> str:
    """The last ``turns`` user messages, latest last, joined by spaces; earlier ones shortened to fit
    :data:`MAX_CONTEXT_CHARS` (the latest message is never cut here)."""
    if turns < 1:
        raise ValueError(f"turns must be at least 1, got {turns}")
    messages = [m.strip() for m in user_messages if m and m.strip()]
    if not messages:
        return ""
    latest, earlier = messages[-1], messages[-turns:-1] if turns > 1 else []
    room = max(0, MAX_CONTEXT_CHARS - len(latest))
    context = " ".join(earlier)
    if len(context) > room:
        context = context[len(context) - room:].split(" ", 1)[-1] if room else ""
    return f"{context} {latest}".strip()
