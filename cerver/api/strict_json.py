"""The JSON the gateway accepts: only values every store backend can hold.

Python's ``json`` module reads more than the store can write back. Each of these parses, then
fails deep inside a request (an ``OverflowError`` from SQLite, a ``DataError`` from PostgreSQL,
a ``TypeError`` from orjson), sometimes *after* part of the request was stored, so a retry
duplicated it:

* integers outside the signed 64-bit range (SQLite, PostgreSQL ``bigint`` and orjson hold 64
  bits);
* ``NaN``, ``Infinity`` and numbers too large for a double (not JSON; ``jsonb`` refuses them);
* the NUL character U+0000 in a string or key (PostgreSQL ``text`` and ``jsonb`` refuse it);
* lone UTF-16 surrogates (``"\\ud800"``: not encodable as UTF-8);
* nesting deeper than :data:`MAX_DEPTH` (orjson writes at most 254 levels, and a body's
  values are stored inside other documents).

:func:`find_unstorable` finds the first such value in a request body and says where it is;
:class:`cerver.api.middleware.RequestGuard` refuses the request with it before any handler
runs, so the rule holds for every route. It costs one more parse of the body by the C scanner
(its number hooks catch the numbers); the Python walk over the document runs only when the
parse met a bad number or the bytes show a string escape, a raw surrogate or deep nesting.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["INT64_MAX", "INT64_MIN", "MAX_DEPTH", "Unstorable", "find_unstorable"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Unstorable:
    """The first value of a body the store cannot hold.

    Attributes:
        loc: where it is, FastAPI-style: ``("body", "metadata", "n")``.
        problem: a stable name: ``integer_out_of_range``, ``number_not_finite``,
            ``nul_character``, ``lone_surrogate`` or ``too_deep``.
        message: what is wrong and how to send it instead.
    """

    loc: tuple[str | int, ...]
    problem: str
    message: str

    @property
    def where(self) -> str:
        """``loc`` as a path: ``metadata.n``, ``messages[2].content``."""
        return _where(self.loc)


def _where(loc: tuple[str | int, ...]) -> str:
    path = ""
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "the body"


class _Number:
    """A number literal the store cannot hold, kept as text until the walk finds its place."""

    __slots__ = ("problem", "text")

    def __init__(self, text: str, problem: str) -> None:
        self.text = text
        self.problem = problem


def find_unstorable(body: bytes) -> Unstorable | None:
    """The first value of the JSON ``body`` the store cannot hold, or ``None``.

    ``None`` too when ``body`` is not JSON at all: the route's own parsing reports that, with
    the position of the syntax error.
    """
    numbers: list[_Number] = []

    def bad(text: str, problem: str) -> _Number:
        numbers.append(number := _Number(text, problem))
        return number

    def parse_int(text: str) -> int | _Number:
        # Length first: int() of a 5,000-digit literal raises (CPython's digit limit).
        if len(text) <= 20 and INT64_MIN <= (value := int(text)) <= INT64_MAX:
            return value
        return bad(text, "integer_out_of_range")

    def parse_float(text: str) -> float | _Number:
        value = float(text)
        return value if math.isfinite(value) else bad(text, "number_not_finite")

    try:
        document = json.loads(
            body,
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=lambda text: bad(text, "number_not_finite"),
        )
    except RecursionError:
        return Unstorable(("body",), "too_deep", _too_deep())
    except ValueError:  # not JSON (JSONDecodeError, UnicodeDecodeError): the route says so
        return None
    # A NUL or a surrogate reaches a string only through a \u escape or raw surrogate bytes.
    strings_suspect = b"\\u" in body or b"\xed" in body
    if numbers or strings_suspect or body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        return _walk(document)
    return None


def _walk(document: Any) -> Unstorable | None:
    # Iterative, so a deep document cannot exhaust the Python stack here.
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(document, ("body",))]
    while pending:
        value, loc = pending.pop()
        if len(loc) > MAX_DEPTH + 1:
            return Unstorable(loc[:4], "too_deep", _too_deep())
        if isinstance(value, str):
            if found := _bad_string(value, loc):
                return found
        elif isinstance(value, _Number):
            return _bad_number(value, loc)
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if found := _bad_string(key, (*loc, key), is_key=True):
                    return found
                pending.append((item, (*loc, key)))
        elif isinstance(value, list):
            pending.extend(((item, (*loc, i)) for i, item in reversed(list(enumerate(value)))))
    return None


def _bad_string(
    text: str, loc: tuple[str | int, ...], *, is_key: bool = False
) -> Unstorable | None:
    what = "key" if is_key else "string"
    if "\x00" in text:
        return Unstorable(
            loc,
            "nul_character",
            f"The {what} at {_where(loc)} contains a NUL character (\\u0000), which the store "
            "cannot hold. Remove it, or encode binary data (e.g. base64).",
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return Unstorable(
                loc,
                "lone_surrogate",
                f"The {what} at {_where(loc)} contains a lone UTF-16 surrogate (\\ud800-"
                "\\udfff without its pair), which is not valid Unicode. Send valid UTF-8.",
            )
    return None


def _bad_number(number: _Number, loc: tuple[str | int, ...]) -> Unstorable:
    where = _where(loc)
    shown = number.text if len(number.text) <= 40 else number.text[:37] + "..."
    if number.problem == "integer_out_of_range":
        message = (
            f"The integer {shown} at {where} is outside the signed 64-bit range "
            f"[{INT64_MIN}, {INT64_MAX}] the store holds. Send a smaller number, or a string."
        )
    else:
        message = (
            f"The number {shown} at {where} is not finite (NaN, Infinity or beyond a double's "
            "range), which JSON and the store cannot hold. Send null or a string."
        )
    return Unstorable(loc, number.problem, message)


def _too_deep() -> str:
    return (
        f"The body nests objects and arrays more than {MAX_DEPTH} levels deep, which the store "
        "cannot hold. Flatten it, or send the deep part as a string."
    )
