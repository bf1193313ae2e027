"""Model and tool output is stored on every backend, NULs and lone surrogates replaced."""

from __future__ import annotations

from cerver.store.storable import REPLACEMENT, storable


def test_nul_and_lone_surrogates_become_the_replacement_character() -> None:
    value = {"out\x00": ["a\x00b", "x\ud800y", 1, None, {"ok": "é😀"}]}
    assert storable(value) == {
        f"out{REPLACEMENT}": [f"a{REPLACEMENT}b", f"x{REPLACEMENT}y", 1, None, {"ok": "é😀"}]
    }


def test_clean_text_is_returned_as_it_is() -> None:
    text = "plain text, ünïcødé and 😀"
    assert storable(text) is text
