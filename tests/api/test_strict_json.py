"""Which JSON values the store cannot hold, and where the check says they are."""

from __future__ import annotations

import json

import pytest

from cerver.api.strict_json import INT64_MAX, INT64_MIN, MAX_DEPTH, find_unstorable


@pytest.mark.parametrize(
    "body",
    [
        {"n": INT64_MAX, "m": INT64_MIN, "f": 1e308, "s": "ünïcødé 😀", "t": "NaN Infinity"},
        {"digits": "12345678901234567890123", "escaped": "a\\u0000b", "e": "1e999"},
        [[[[{"deep": [1, 2, 3]}]]]],
        {"many": [{"a": [1]} for _ in range(200)]},
    ],
)
def test_storable_bodies_pass(body: object) -> None:
    assert find_unstorable(json.dumps(body, ensure_ascii=False).encode()) is None


@pytest.mark.parametrize(
    ("raw", "loc", "problem"),
    [
        (
            b'{"metadata": {"n": 1180591620717411303424}}',
            ("body", "metadata", "n"),
            "integer_out_of_range",
        ),
        (b'{"n": -9223372036854775809}', ("body", "n"), "integer_out_of_range"),
        (b'{"n": 1' + b"0" * 5000 + b"}", ("body", "n"), "integer_out_of_range"),
        (b'{"x": [1, NaN]}', ("body", "x", 1), "number_not_finite"),
        (b'{"x": -Infinity}', ("body", "x"), "number_not_finite"),
        (b'{"x": 1e400}', ("body", "x"), "number_not_finite"),
        (b'{"code": "echo a\\u0000b"}', ("body", "code"), "nul_character"),
        (b'{"env": {"A\\u0000": "x"}}', ("body", "env", "A\x00"), "nul_character"),
        (b'{"s": "\\ud800"}', ("body", "s"), "lone_surrogate"),
        (b'{"s": "\xed\xa0\x80"}', ("body", "s"), "lone_surrogate"),
    ],
)
def test_unstorable_values_are_found_where_they_are(raw: bytes, loc: tuple, problem: str) -> None:
    found = find_unstorable(raw)
    assert found is not None
    assert (found.loc, found.problem) == (loc, problem)
    assert found.where in found.message


def test_deep_nesting_is_refused() -> None:
    depth = MAX_DEPTH + 5
    found = find_unstorable(b"[" * depth + b"]" * depth)
    assert found is not None and found.problem == "too_deep"
    found = find_unstorable(b"[" * 100_000 + b"]" * 100_000)
    assert found is not None and found.problem == "too_deep"


def test_surrogate_pairs_and_non_json_pass() -> None:
    assert find_unstorable(b'{"emoji": "\\ud83d\\ude00"}') is None
    # Not JSON: the route reports the syntax error with its position.
    assert find_unstorable(b'{"x": NaN') is None
