"""The serving process's own settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cerver.cli import serving


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_the_gateway_freezes_its_start_up_objects_and_collects_young_ones_less_often() -> None:
    built_at_start_up = [object() for _ in range(10)]
    _, middle, oldest = gc.get_threshold()
    serving._collect_garbage_less_often()
    assert gc.get_freeze_count() >= len(built_at_start_up)
    # The older generations keep their thresholds, so cyclic garbage is still reclaimed.
    assert gc.get_threshold() == (serving.GC_YOUNG_THRESHOLD, middle, oldest)
    assert serving.GC_YOUNG_THRESHOLD > 700  # CPython's default
