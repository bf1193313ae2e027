"""Text the gateway writes on its own account, made storable on every backend.

A client that sends a NUL character or a lone surrogate is refused before anything is stored
(:mod:`cerver.api.strict_json`). What a model answers or a sandbox command prints cannot be
refused (``printf 'a\\0b'``, ``cat`` of a binary file), so before such text is written its NULs,
which PostgreSQL's ``text`` and ``jsonb`` cannot hold, and its lone surrogates, which UTF-8
cannot encode, become U+FFFD (the replacement character), the same on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REPLACEMENT", "storable"]

REPLACEMENT = "\ufffd"
# A Python string holds a valid surrogate pair as one code point: any surrogate left is lone.
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: Any) -> Any:
    """``value`` with every string in it (keys too) made storable; other values unchanged.

    Strings that need nothing are returned as they are (no copy): the common case costs one
    scan per string.
    """
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(k) if isinstance(k, str) else k: storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def _text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if not text.isascii():
        text = _SURROGATE.sub(REPLACEMENT, text)
    return text
