"""`cerver compare`: variant parsing and the live table, fed by a real fan-out stream."""

from __future__ import annotations

import io

from rich.console import Console

from cerver.cli.compare import CompareBoard, parse_variant
from cerver.client import AsyncClient
from cerver.testing.mock_upstream import MockUpstream, Reply


def test_parse_variant() -> None:
    assert parse_variant("anthropic:claude-sonnet-4-5") == {
        "harness": "anthropic",
        "model": "claude-sonnet-4-5",
    }
    assert parse_variant("openai") == {"harness": "openai"}
    assert parse_variant("openai:gpt-5@local") == {
        "harness": "openai",
        "model": "gpt-5",
        "compute": {"provider": "local"},
    }
    assert parse_variant("anthropic@none") == {"harness": "anthropic", "compute": None}


async def test_board_follows_the_stream_and_names_the_winner(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(
        Reply(text="a b c", model="m1"),
        Reply(text="a b c d", model="m2"),
        Reply(text="a b c e", model="m3"),
    )
    board = CompareBoard()
    variants = [parse_variant(f"anthropic:m{i}") for i in (1, 2, 3)]
    async for event in client.stream_fanout("hi", variants, judge={"type": "consensus"}):
        board.apply(event.event, event.data)
        Console(width=200, file=io.StringIO()).print(board.table())  # renders mid-way
    console = Console(width=200, record=True)
    console.print(board.table())
    text = console.export_text()
    assert "anthropic:m1 ★" in text
    assert text.count("completed") == 3
    assert board.summary().startswith("Winner: anthropic:m1 (judge: consensus)")
