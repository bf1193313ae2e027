"""A third-party compute provider: one module, one entry point, the conformance suite green.

The module below is what a plug-in author ships: a compute built on the local one (a directory
per sandbox, confined by bubblewrap when it is installed). It reaches Cerver only through the
``cerver.compute`` entry-point group of a throwaway distribution, and then passes the same
:class:`~cerver.testing.conformance.SandboxConformance` suite as every built-in provider.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cerver.registry import compute_registry
from cerver.testing.conformance import SandboxConformance
from compute.base import Compute
from tests.plugin_dist import install_plugin

ACME_COMPUTE = '''
    from typing import ClassVar

    from compute.local import LocalCompute


    class AcmeCompute(LocalCompute):
        """Acme's sandboxes: local directories under the operator's root."""

        name: ClassVar[str] = "acme"
'''


class TestEntryPointCompute(SandboxConformance):
    @pytest.fixture
    def compute(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Compute:
        dist = tmp_path / "dist"
        dist.mkdir()
        install_plugin(
            dist,
            monkeypatch,
            compute_registry,
            group="cerver.compute",
            name="acme",
            module="cerver_acme_compute",
            target="AcmeCompute",
            source=ACME_COMPUTE,
        )
        cls = compute_registry.load("acme")
        assert cls.__module__ == "cerver_acme_compute"  # found through the entry point
        isolation = "bwrap" if shutil.which("bwrap") else "none"
        return cls(tmp_path / "sandboxes", isolation=isolation)
