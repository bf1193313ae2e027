"""Harnesses: what writes a session's next turn (an SDK tool loop, a coding CLI…).

One module per harness; :mod:`harnesses.base` holds the contract and the event types.
"""

from harnesses.base import (
    Error,
    Harness,
    HarnessEvent,
    Message,
    TextDelta,
    TurnContext,
    TurnOptions,
    Usage,
)

__all__ = [
    "Error",
    "Harness",
    "HarnessEvent",
    "Message",
    "TextDelta",
    "TurnContext",
    "TurnOptions",
    "Usage",
]
