"""Replays of recent conversations, kept so the next model call converts only what is new.

An SDK harness replays the whole transcript on every model call (:mod:`harnesses.replay`),
which on a conversation of thousands of entries costs more than everything else the gateway
does for the turn. Most of it is the same as last time: a session's transcript only grows,
and the gateway hands each turn the very entry objects it handed the last one (the store's
:class:`~cerver.store.transcript_cache.TranscriptCache`).

So each session keeps its replay *checkpoint*: the normalisation and the rendered messages
just before its latest user message, with the entries they were made from. The next call
whose conversation starts with those same entries resumes there. They are compared as values
(a replay depends on nothing else), which costs little: the gateway hands each turn the very
entry objects it handed the last, and an object equals itself at once.

A checkpoint is only taken where the replay of what follows cannot change what comes before:

* right before a user entry, where the assistant's run has ended (its tool results placed,
  reasoning that led to nothing dropped); a later conversation must also go on with a
  non-assistant entry there, or the checkpoint is not used;
* when every tool call before it found its result before it too (a call still waiting, say
  for an app's client tool, could be answered by an entry after the cut). After a call
  that never got its result (its turn was interrupted), every model call of the
  conversation therefore replays it from the last checkpoint before that call.

Otherwise, and whenever the entries differ (a forked or rewritten transcript, a cache
eviction upstream), the conversation is replayed whole: the cache changes the cost of a
replay, never its result, and ``tests/harnesses/test_replay_cache.py`` checks that against
the uncached functions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cerver.types import Entry
from harnesses.replay import Normalisation, Renderer, Replay, pair_results

__all__ = ["ReplayCache"]


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    entries: list[Entry]
    """The conversation up to the checkpoint (what a resumed one must start with); never
    changed."""
    options: tuple[str | None, bool]
    """``system_prompt`` and ``tools_as_text`` it was made with."""
    normalisation: Normalisation
    renderer: Renderer

    def fits(self, history: Sequence[Entry], options: tuple[str | None, bool]) -> bool:
        cut = len(self.entries)
        if options != self.options or len(history) < cut:
            return False
        head = history[:cut]
        # Compared in C, each pair at once when it is the same object (a 20,000-entry
        # conversation in 0.1 ms; by ``operator.is_`` 0.8 ms).
        if (head if isinstance(head, list) else list(head)) != self.entries:
            return False
        following = next((e for e in history[cut:] if e.role != "event"), None)
        return following is None or following.role != "assistant"


class ReplayCache:
    """Replays of up to ``max_sessions`` conversations holding up to ``max_entries`` entries
    in all, least recently used dropped first.

    Args:
        renderer: makes an empty renderer of the provider's wire format (e.g.
            :class:`~harnesses.replay.AnthropicMessages`).
        max_sessions: conversations kept.
        max_entries: entries kept over all conversations (a longer one is not kept).
    """

    def __init__(
        self,
        renderer: Callable[[], Renderer],
        *,
        max_sessions: int = 256,
        max_entries: int = 100_000,
    ) -> None:
        self._renderer = renderer
        self._max_sessions = max_sessions
        self._max_entries = max_entries
        self._entries = 0
        self._checkpoints: OrderedDict[str, _Checkpoint] = OrderedDict()

    def replay(
        self,
        key: str,
        history: Sequence[Entry],
        *,
        system_prompt: str | None = None,
        tools_as_text: bool = False,
    ) -> Replay:
        """``history`` in the provider's wire format, as the uncached function would make it
        (``to_anthropic_messages(history, system_prompt=…, tools_as_text=…)``).

        Args:
            key: the conversation's identity (a session id); a call with another
                conversation under the same key is simply not resumed.
            history: the conversation, oldest first, the new user message included.

        Returns:
            The replay. Its message dicts may be shared with the cache and later replays:
            read them, never change them.
        """
        options = (system_prompt, tools_as_text)
        saved = self._checkpoints.get(key)
        if saved is not None and saved.fits(history, options):
            self._checkpoints.move_to_end(key)
            start = len(saved.entries)
            run, renderer = saved.normalisation.fork(), saved.renderer.fork()
        else:
            start = 0
            run, renderer = Normalisation(system_prompt, tools_as_text), self._renderer()
        results = pair_results(history, start)
        cut = _last_user_message(history, start)
        if cut > start:
            run.feed(history, start, cut, results)
            run.settle()
            renderer.add(run.take_items())
            if run.results_within(cut):
                self._keep(
                    key, _Checkpoint(list(history[:cut]), options, run.fork(), renderer.fork())
                )
            start = cut
        run.feed(history, start, len(history), results)
        run.settle()
        renderer.add(run.take_items())
        return renderer.replay(run.system)

    def __contains__(self, key: object) -> bool:
        """Whether a checkpoint of ``key``'s conversation is kept."""
        return key in self._checkpoints

    def _keep(self, key: str, checkpoint: _Checkpoint) -> None:
        self.forget(key)
        size = len(checkpoint.entries)
        if size > self._max_entries:
            return
        self._checkpoints[key] = checkpoint
        self._entries += size
        while len(self._checkpoints) > self._max_sessions or self._entries > self._max_entries:
            _, dropped = self._checkpoints.popitem(last=False)
            self._entries -= len(dropped.entries)

    def forget(self, key: str) -> None:
        """Drop ``key``'s checkpoint, if any."""
        dropped = self._checkpoints.pop(key, None)
        if dropped is not None:
            self._entries -= len(dropped.entries)


def _last_user_message(history: Sequence[Entry], start: int) -> int:
    """The index of the last user entry at or after ``start`` (``start`` when none)."""
    for index in range(len(history) - 1, start - 1, -1):
        if history[index].role == "user":
            return index
    return start
