"""Cerver: a self-hostable session gateway for AI apps.

Public names: :class:`Client` and :class:`AsyncClient` (HTTP clients for a gateway),
:class:`Gateway` and :func:`create_app` (to embed the gateway), :class:`Settings`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "Gateway", "Settings", "create_app"]

_LAZY = {
    "AsyncClient": "cerver.client",
    "Client": "cerver.client",
    "Gateway": "cerver.gateway",
    "Settings": "cerver.settings",
    "create_app": "cerver.api",
}


def __getattr__(name: str) -> Any:
    # Lazy, so `import cerver.types` in a plug-in does not pull in the web stack.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cerver' has no attribute {name!r}")
