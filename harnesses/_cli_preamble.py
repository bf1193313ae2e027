"""The conversation so far, as text a CLI can be given when it cannot resume natively.

A CLI harness that takes over a session from another harness (or from itself in another
compute) starts a fresh CLI session; the earlier turns reach it as one clearly delimited
block built from the neutral transcript by :func:`history_preamble`. The CLI harnesses pass
it through the CLI's system-side channel (Claude Code ``--append-system-prompt-file``, Codex
``developer_instructions``), so the user message stays the user's own words. Tool calls and
results appear as text, with the replay module's rules (every call gets a result, events are
skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cerver.types import Entry
from harnesses.replay import to_anthropic_messages

__all__ = ["PREAMBLE_END", "PREAMBLE_START", "history_preamble"]

PREAMBLE_START: Final = "<cerver-session-history>"
PREAMBLE_END: Final = "</cerver-session-history>"
_INTRO: Final = (
    "This session started before you joined it. Its conversation so far, oldest first, is "
    "below (turns may have been written by other models or tools; the files they made are "
    "in the working directory). Continue the conversation from it."
)


def history_preamble(history: Sequence[Entry]) -> str | None:
    """The transcript before this turn as a delimited block, or ``None`` when it is empty.

    Each message is headed ``[user]`` or ``[assistant]``; tool calls and results read
    ``[tool call <id>: <name> <arguments>]`` and ``[tool result <id> (<name>)]``.
    """
    replay = to_anthropic_messages(history, tools_as_text=True)
    blocks = []
    for message in replay.messages:
        text = "\n\n".join(b["text"] for b in message["content"] if b.get("type") == "text")
        if text.strip():
            blocks.append(f"[{message['role']}]\n{text.strip()}")
    if not blocks:
        return None
    return "\n\n".join([PREAMBLE_START, _INTRO, *blocks, PREAMBLE_END])
