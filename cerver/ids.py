"""Prefixed, URL-safe, sortable-enough identifiers (``sess_…``, ``run_…``)."""

from __future__ import annotations

import secrets

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """A new id such as ``sess_3f9c0a…``: the prefix, an underscore, 24 hex characters."""
    return f"{prefix}_{secrets.token_hex(12)}"
