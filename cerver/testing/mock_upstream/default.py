"""The default behaviour: what the mock model answers when no reply is scripted.

Deterministic rules, tried in order (every text starts with ``[mock upstream]`` so that
nobody mistakes the test double for a model):

1. The newest item is a tool result → ``[mock upstream] The tool returned: <output>``
   (first 200 characters, stripped). This ends every tool loop after one round.
2. The newest user text holds a command (a line ``run: <cmd>``, else the first
   ``` `<cmd>` ``` span) and the request declares a shell tool → call that tool with it.
3. Otherwise → a summary of the conversation that proves which history the model received.

Harness-injected context (a text that is a single ``<tag>…</tag>`` element, such as Claude
Code's ``<system-reminder>``) is skipped when looking for the newest item and the user texts.
"""

from __future__ import annotations

import re
from typing import Any

from cerver.testing.mock_upstream.neutral import Conversation, Item, ToolSpec
from cerver.testing.mock_upstream.script import Reply, ToolCallSpec

__all__ = ["PREFIX", "SHELL_TOOL_NAMES", "default_reply", "find_command", "shell_call"]

PREFIX = "[mock upstream]"
SHELL_TOOL_NAMES = ("bash", "Bash", "exec_command", "shell", "local_shell", "run_shell_command")
"""Tool names treated as a shell, in order of preference."""

_RUN_LINE = re.compile(r"^[ \t]*run:[ \t]*(\S.*?)[ \t]*$", re.IGNORECASE | re.MULTILINE)
_BACKTICKS = re.compile(r"`([^`\n]+)`")


def default_reply(conversation: Conversation) -> Reply:
    """The reply for ``conversation`` when the script queue has nothing for it."""
    items = [item for item in conversation.items if not item.injected]
    if items and items[-1].kind == "tool_result":
        return Reply(text=f"{PREFIX} The tool returned: {items[-1].text.strip()[:200]}")
    newest = _newest_user_text(items)
    command = find_command(newest)
    if command is not None:
        call = shell_call(conversation.tools, command)
        if call is not None:
            return Reply(tool_calls=[call])
    return Reply(text=_summary(conversation, items, newest))


def find_command(text: str) -> str | None:
    """The command in ``text``: a ``run:`` line first, else the first backticked span."""
    match = _RUN_LINE.search(text) or _BACKTICKS.search(text)
    if match is None:
        return None
    return match.group(1).strip() or None


def shell_call(tools: list[ToolSpec], command: str) -> ToolCallSpec | None:
    """A call of the request's shell tool running ``command``, or ``None`` if it has none.

    The argument key comes from the tool's schema (``command`` or ``cmd``; ``command`` when
    the schema names neither); an array-typed property gets ``["bash", "-lc", command]``.
    """
    by_name = {tool.name: tool for tool in tools}
    tool = next((by_name[name] for name in SHELL_TOOL_NAMES if name in by_name), None)
    if tool is None:
        return None
    properties = tool.parameters.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    key = next((k for k in ("command", "cmd") if k in properties), "command")
    value: Any = command
    if _is_array(properties.get(key)):
        value = ["bash", "-lc", command]
    return ToolCallSpec(name=tool.name, arguments={key: value})


def _is_array(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind)


def _newest_user_text(items: list[Item]) -> str:
    texts = [item for item in items if item.role == "user" and item.kind == "text"]
    if not texts:
        return ""
    turn = texts[-1].turn
    return "\n".join(item.text for item in texts if item.turn == turn).strip()


def _summary(conversation: Conversation, items: list[Item], newest: str) -> str:
    first = next((i.text for i in items if i.role == "user" and i.kind == "text"), "").strip()
    earlier = max(conversation.wire_count - 1, 0)
    text = (
        f'{PREFIX} ({conversation.model}) You said: "{newest[:200]}". '
        f"Earlier in this conversation I can see {earlier} messages; "
        f'the first user message was: "{first[:100]}".'
    )
    results = [item for item in items if item.kind == "tool_result"]
    if results:
        text += f' The last tool output I can see: "{results[-1].text.strip()[:100]}".'
    return text
