"""The one server-sent-events reader (the gateway's client and the SDK harnesses use it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from cerver.event_stream import SentEvent, read_events


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.split("\n"):
        yield line


async def _read(text: str) -> list[SentEvent]:
    return [event async for event in read_events(_lines(text))]


async def test_events_are_dispatched_at_their_blank_line_with_name_data_and_id() -> None:
    stream = 'id: 7\nevent: text_delta\ndata: {"text": "hi"}\n\ndata: plain\n\n'
    assert await _read(stream) == [
        SentEvent("text_delta", '{"text": "hi"}', "7"),
        SentEvent("message", "plain", None),
    ]


async def test_data_lines_are_joined_and_one_leading_space_is_dropped() -> None:
    assert await _read("data:a\ndata:  b\n\n") == [SentEvent("message", "a\n b", None)]


async def test_comments_unknown_fields_and_events_without_data_are_skipped() -> None:
    stream = ": keep-alive\n\nevent: ping\n\nretry: 10\nevent: done\ndata: 1\n\n"
    assert await _read(stream) == [SentEvent("done", "1", None)]


async def test_an_event_cut_off_before_its_blank_line_is_not_dispatched() -> None:
    assert await _read("data: 1\n\ndata: half") == [SentEvent("message", "1", None)]
