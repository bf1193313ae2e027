"""The mock upstream: a local test double for the Anthropic Messages API, the OpenAI
Responses API, OpenAI Chat Completions and the Gemini API (``generateContent``).

It answers from a script of :class:`Reply` objects (text, tool calls, errors, delays,
stalls, mid-stream failures) and, when the script is empty, with deterministic default
replies that start with ``[mock upstream]``; it logs every request. Tests start one with
:class:`MockUpstream`; ``cerver mock-upstream`` runs :func:`serve`; :func:`create_app`
gives the bare ASGI app. See ``cerver.testing.mock_upstream.default`` for the default rules.
"""

from cerver.testing.mock_upstream.app import create_app
from cerver.testing.mock_upstream.default import PREFIX, SHELL_TOOL_NAMES
from cerver.testing.mock_upstream.pacing import UpstreamDisconnect
from cerver.testing.mock_upstream.script import Reply, ToolCallSpec, UpstreamFailure
from cerver.testing.mock_upstream.server import MockUpstream, serve
from cerver.testing.mock_upstream.state import MockState

__all__ = [
    "PREFIX",
    "SHELL_TOOL_NAMES",
    "MockState",
    "MockUpstream",
    "Reply",
    "ToolCallSpec",
    "UpstreamDisconnect",
    "UpstreamFailure",
    "create_app",
    "serve",
]
