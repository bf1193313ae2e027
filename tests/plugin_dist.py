"""Install a throwaway plug-in distribution for one test: a module and an entry point.

The distribution is a ``*.dist-info`` directory with ``entry_points.txt`` next to the module,
on a path prepended to ``sys.path``, so :func:`importlib.metadata.entry_points` finds it the
way it finds an installed package. The registry is reset so its scan sees it, and its state is
put back after the test.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from cerver.registry import Registry


def install_plugin(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: Registry,
    *,
    group: str,
    name: str,
    module: str,
    target: str,
    source: str,
) -> None:
    """Make ``name`` in ``group`` resolve to ``module:target``, defined by ``source``."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module.replace('_', '-')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {module}:{target}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, module, raising=False)
    # The registry's state is put back after the test, so later tests do not see the plug-in.
    for attribute in ("_targets", "_loaded", "_entry_points_scanned"):
        monkeypatch.setattr(registry, attribute, getattr(registry, attribute))
    registry.reset()
