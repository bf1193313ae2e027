"""The fan-out orchestration: ordering, failure isolation, keeping the winner, human picks."""

from __future__ import annotations

import asyncio
import time

import pytest

from cerver.errors import Conflict, InvalidRequest
from cerver.gateway import Gateway
from cerver.services.fanout import FanoutRequest, VariantRequest
from cerver.services.sessions import ComputeChoice, HarnessChoice
from cerver.store import SessionRecord
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure
from judges.base import JudgeSpec
from tests.conftest import ADMIN_KEY

NO_COMPUTE = ComputeChoice("none")


async def _account(gateway: Gateway) -> str:
    return (await gateway.auth.authenticate(f"Bearer {ADMIN_KEY}")).id


async def _parent(gateway: Gateway, account: str) -> SessionRecord:
    parent = await gateway.sessions.create(
        account, harness=HarnessChoice("anthropic"), compute=NO_COMPUTE, user="u1"
    )
    await gateway.sessions.append_input(parent, role="user", content="earlier question")
    await gateway.sessions.append_input(parent, role="assistant", content="earlier answer")
    return await gateway.sessions.get(account, parent.id)


def _variants(*models: str) -> list[VariantRequest]:
    return [VariantRequest(HarnessChoice("anthropic", m)) for m in models]


async def test_variants_run_in_parallel_in_child_sessions_and_return_in_order(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    # The first variant answers last: results still come back in request order.
    mock_upstream.script(
        Reply(text="first", model="m1", delay_ms=1000),
        Reply(text="second", model="m2"),
        Reply(text="third", model="m3"),
    )
    request = FanoutRequest(input="go", variants=_variants("m1", "m2", "m3"), keep="none")
    handle = await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    record = await handle.result()
    assert record.status == "completed"
    assert [v.output for v in record.variants] == ["first", "second", "third"]
    assert [v.model for v in record.variants] == ["m1", "m2", "m3"]
    # Each variant was persisted as it finished: the slow first one last.
    assert max(record.variants, key=lambda v: v.ended_at).model == "m1"
    for variant in record.variants:
        child = await gateway.sessions.get(account, variant.session_id)
        assert child.parent_session_id == parent.id and child.user == "u1"
        assert child.metadata["fanout_id"] == record.id
        transcript = await gateway.sessions.transcript(child.id)
        assert [e.content for e in transcript] == [
            "earlier question",
            "earlier answer",
            "go",
            variant.output,
        ]


async def test_an_erroring_and_a_hanging_variant_become_data(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(
        # 400: not retried by the harness, so the variant fails at once.
        Reply(error=UpstreamFailure(status=400, message="boom"), model="m-err"),
        Reply(text="never", model="m-hang", delay_ms=60_000),
        Reply(text="fine answer", model="m-ok"),
    )
    request = FanoutRequest(
        input="go",
        variants=_variants("m-err", "m-hang", "m-ok"),
        judge=JudgeSpec("consensus"),
        variant_timeout_s=1.0,
    )
    handle = await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    record = await handle.result()
    err, hang, ok = record.variants
    assert (err.status, hang.status, ok.status) == ("failed", "timeout", "completed")
    assert "boom" in err.error["detail"]
    assert hang.error["code"] == "variant_timeout"
    # The healthy variant was not held back by the hanging one.
    assert ok.ended_at < hang.ended_at
    assert record.verdict["excluded"] == [err.id, hang.id]
    assert record.winner_variant_id == ok.id
    # The timed-out turn was cancelled and let go of its session.
    hung = await gateway.sessions.get(account, hang.session_id)
    assert hung.lock_run_id is None and hung.status == "ready"
    run = await gateway.store.runs.get(hang.session_id, hang.run_id)
    assert run.status == "cancelled"


async def test_the_winner_is_kept_in_the_parent_with_provenance(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(
        Reply(text="the answer is 42", model="m1"),
        Reply(text="the answer is 42 indeed", model="m2"),
        Reply(text="the answer is 42 surely", model="m3"),
    )
    request = FanoutRequest(
        input="what is it?", variants=_variants("m1", "m2", "m3"), judge=JudgeSpec("consensus")
    )
    record = await (
        await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    ).result()
    winner = record.variants[0]
    assert record.winner_variant_id == winner.id and record.picked_by == "judge"
    entries = await gateway.sessions.transcript(parent.id)
    assert [(e.role, e.kind) for e in entries[2:]] == [
        ("event", "fanout"),
        ("event", "verdict"),
        ("user", "text"),
        ("assistant", "text"),
    ]
    kept = entries[-1]
    assert record.kept_message_seq == kept.seq
    assert kept.content == "the answer is 42"
    assert (kept.harness, kept.model, kept.provider) == ("anthropic", "m1", "anthropic")
    assert kept.metadata["provenance"] == {
        "fanout_id": record.id,
        "variant_id": winner.id,
        "variant_session_id": winner.session_id,
        "harness": "anthropic",
        "model": "m1",
        "provider": "anthropic",
        "judge": "consensus",
    }
    assert entries[-2].content == "what is it?"
    assert entries[3].metadata["verdict"]["winner_variant_id"] == winner.id
    # The losers stay queryable as child sessions.
    children, _ = await gateway.sessions.list(account, _filters(parent.id), limit=10, cursor=None)
    assert {c.id for c in children} == {v.session_id for v in record.variants}
    # The parent's next turn sees the kept answer.
    mock_upstream.reset()
    await (await gateway.turns.start(account, parent.id, _turn("and then?"))).result()
    sent = str(mock_upstream.requests[-1]["body"]["messages"])
    assert "the answer is 42" in sent and "indeed" not in sent


async def test_a_person_picks_and_overrules_the_judge(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(Reply(text="same", model="m1"), Reply(text="same", model="m2"))
    request = FanoutRequest(
        input="go", variants=_variants("m1", "m2"), judge=JudgeSpec("consensus")
    )
    record = await (
        await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    ).result()
    assert record.verdict["status"] == "tie" and record.kept_message_seq is None
    first, second = record.variants
    picked = await gateway.fanouts.pick(account, record.id, second.id, reason="reads better")
    assert (picked.winner_variant_id, picked.picked_by) == (second.id, "human")
    entries = await gateway.sessions.transcript(parent.id)
    assert entries[-1].seq == picked.kept_message_seq
    assert entries[-1].metadata["provenance"]["judge"] == "human"
    human = entries[-3]
    assert human.kind == "verdict" and human.metadata["picked_by"] == "human"
    assert human.metadata["verdict"]["reason"] == "reads better"
    # Overruling a kept pick appends the new one, naming what it supersedes.
    again = await gateway.fanouts.pick(account, record.id, first.id)
    entries = await gateway.sessions.transcript(parent.id)
    assert entries[-1].metadata["supersedes_seq"] == picked.kept_message_seq
    assert entries[-2].metadata["overrules"] == second.id
    assert again.kept_message_seq == entries[-1].seq


async def test_a_failing_judge_keeps_nothing_and_says_so(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(
        Reply(text="a", model="m1"),
        Reply(text="b", model="m2"),
        Reply(error=UpstreamFailure(status=400, message="judge down"), model="judge-model"),
    )
    request = FanoutRequest(
        input="go",
        variants=_variants("m1", "m2"),
        judge=JudgeSpec("llm", model="judge-model", options={"harness": "anthropic"}),
    )
    record = await (
        await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    ).result()
    assert record.status == "completed"
    assert record.verdict["status"] == "failed" and "judge down" in record.verdict["reason"]
    assert record.kept_message_seq is None and record.winner_variant_id is None
    kinds = [e.kind for e in await gateway.sessions.transcript(parent.id)]
    assert kinds[-2:] == ["fanout", "verdict"]


async def test_llm_judge_scores_through_the_harness_and_its_cost_is_on_record(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(
        Reply(text="weak", model="m1"),
        Reply(text="strong", model="m2"),
        Reply(text='{"scores": {"A": {"score": 3}, "B": {"score": 8}}}', model="judge-model"),
    )
    request = FanoutRequest(
        input="go",
        variants=_variants("m1", "m2"),
        judge=JudgeSpec("llm", model="judge-model", options={"rubric": "strength"}),
    )
    record = await (
        await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    ).result()
    assert record.winner_variant_id == record.variants[1].id
    assert record.judge_output_tokens and record.judge_output_tokens > 0
    [audit] = record.verdict["audit"]
    assert audit["model"] == "judge-model" and "strength" in audit["prompt"]
    assert audit["raw"].startswith('{"scores"')
    totals = await gateway.store.ledger.session_totals(parent.id)
    assert any(row["kind"] == "judge" and row["model"] == "judge-model" for row in totals)


async def test_refusals_happen_before_anything_runs(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    request = FanoutRequest(
        input="go", variants=_variants("m1", "m2"), judge=JudgeSpec("llm", model="m2")
    )
    with pytest.raises(InvalidRequest, match="contestant"):
        await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    assert mock_upstream.requests == []
    children, _ = await gateway.sessions.list(account, _filters(parent.id), limit=10, cursor=None)
    assert children == []


async def test_progress_is_visible_while_running_and_pick_waits_for_the_end(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(
        Reply(text="fast", model="m1"), Reply(text="slow", model="m2", delay_ms=800)
    )
    request = FanoutRequest(input="go", variants=_variants("m1", "m2"), keep="none")
    handle = await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    deadline = time.monotonic() + 5
    while True:
        record = await gateway.fanouts.get(account, handle.fanout_id)
        if record.variants[0].status == "completed" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert record.status == "running"
    assert [v.status for v in record.variants] == ["completed", "running"]
    with pytest.raises(Conflict):
        await gateway.fanouts.pick(account, handle.fanout_id, record.variants[0].id)
    events = [e.event async for e in handle.events()]
    assert events[0] == "fanout.started" and events[-1] == "verdict"
    assert events.count("variant.started") == events.count("variant.completed") == 2
    assert (await handle.result()).status == "completed"


def _filters(parent_id: str):
    from cerver.store import SessionFilters

    return SessionFilters(parent_session_id=parent_id)


def _turn(text: str):
    from cerver.services.turns import TurnRequest

    return TurnRequest(input=text)


async def test_a_fanout_stopped_by_shutdown_is_recorded_interrupted(
    tmp_path, sqlite_url: str, mock_upstream: MockUpstream
) -> None:
    from tests.conftest import make_settings

    gateway = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream))
    await gateway.start()
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(Reply(text="x", model="m1", delay_ms=3000), Reply(text="y", model="m2"))
    request = FanoutRequest(input="hi", variants=_variants("m1", "m2"), max_concurrency=1)
    handle = await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    await asyncio.sleep(0.5)
    await gateway.stop()  # a deploy: the fan-out and its variants' turns are interrupted

    restarted = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream))
    await restarted.start()
    try:
        record = await restarted.fanouts.get(account, handle.fanout_id)
        assert record.status == "interrupted" and record.completed_at is not None
        assert [v.status for v in record.variants] == ["interrupted", "interrupted"]
        with pytest.raises(InvalidRequest, match="did not complete"):
            await restarted.fanouts.pick(account, handle.fanout_id, record.variants[0].id)
    finally:
        await restarted.stop()


async def test_a_fanout_whose_process_died_is_reclaimed_as_interrupted_at_start(
    tmp_path, sqlite_url: str, mock_upstream: MockUpstream
) -> None:
    from datetime import timedelta

    from cerver.store.schema import utcnow
    from tests.conftest import make_settings

    gateway = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream, run_lease_seconds=0.3))
    await gateway.start()
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(Reply(text="x", model="m1", delay_ms=1500))
    request = FanoutRequest(input="hi", variants=_variants("m1"))
    alive = await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    await asyncio.sleep(0.5)  # longer than a lease: the live fan-out keeps renewing its own
    # A fan-out left by a process that was killed: still "running", its lease ran out.
    dead = "fan_dead0000000000000000"
    await gateway.store.fanouts.create(
        {
            "id": dead,
            "account_id": account,
            "parent_session_id": parent.id,
            "status": "running",
            "input": "hi",
            "keep": "winner",
            "max_concurrency": 1,
            "lease_expires_at": utcnow() - timedelta(seconds=1),
        },
        [
            {"id": "var_dead", "fanout_id": dead, "position": 0, "harness": "anthropic"}
            | {"model": "m1", "status": "running"}
        ],
    )
    # Another gateway starts on the same store: it reclaims the dead fan-out, not the live one.
    other = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream))
    await other.start()
    await other.stop()
    record = await gateway.fanouts.get(account, dead)
    assert record.status == "interrupted" and record.variants[0].status == "interrupted"
    with pytest.raises(InvalidRequest, match="did not complete"):
        await gateway.fanouts.pick(account, dead, "var_dead")
    assert (await gateway.fanouts.get(account, alive.fanout_id)).status == "running"
    assert (await alive.result()).status == "completed"
    await gateway.stop()


async def test_a_fanout_cancelled_before_its_task_began_still_ends(gateway: Gateway) -> None:
    """A fan-out's task cancelled before it first ran would never record its end nor end its
    events (the same race that left a turn's stream waiting forever)."""
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    request = FanoutRequest(input="hi", variants=_variants("m1", "m2"))
    handle = await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    handle.cancel()

    async with asyncio.timeout(10):
        events = [event async for event in handle.events()]
        record = await handle.result()

    assert events == [] and record.status == "cancelled"
    assert (await gateway.fanouts.get(account, handle.fanout_id)).status == "cancelled"


async def test_a_cancelled_fanout_stops_its_variant_turns_and_frees_their_sessions(
    gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    account = await _account(gateway)
    parent = await _parent(gateway, account)
    mock_upstream.script(
        Reply(text="slow one", model="m1", chunk_delay_ms=200),
        Reply(text="x", model="m2", delay_ms=30_000),
    )
    request = FanoutRequest(input="hi", variants=_variants("m1", "m2"))
    handle = await gateway.fanouts.start(account, request, parent_session_id=parent.id)
    await asyncio.sleep(0.6)
    record = await gateway.fanouts.cancel(account, handle.fanout_id)
    assert record.status == "cancelled" and record.verdict is None
    assert [v.status for v in record.variants] == ["cancelled", "cancelled"]
    assert (await handle.result()).status == "cancelled"
    for variant in record.variants:
        [run] = await gateway.runs.list(variant.session_id)
        assert run.status == "cancelled"
        child = await gateway.sessions.get(account, variant.session_id)
        assert child.status == "ready" and child.lock_run_id is None
    # Cancelling again answers with the fan-out as it ended.
    assert (await gateway.fanouts.cancel(account, handle.fanout_id)).status == "cancelled"
