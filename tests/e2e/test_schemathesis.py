"""Schemathesis over every operation of a real `cerver serve`, as the admin.

Examples, coverage, fuzzing and stateful phases (links inferred from the responses), bounded
by ``tests/e2e/schemathesis.toml``. The run passes only with no server error (5xx), no status
code the OpenAPI document does not list, a ``405`` with ``Allow``, and bodies that match their
documented schemas. A failure prints schemathesis's report with a ``curl`` line to replay it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import bootstrap_key, serving

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with serving(tmp_path) as (url, data_dir):
        yield url, bootstrap_key(data_dir)


def test_every_operation_answers_as_documented(admin: tuple[str, str], tmp_path: Path) -> None:
    st = shutil.which("schemathesis")
    if st is None:
        pytest.skip("schemathesis is not installed: uv sync --locked --extra test")
    url, key = admin
    run = subprocess.run(
        [
            st,
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    print(run.stdout, run.stderr)  # the report: each failure with a curl line to replay it
    assert run.returncode == 0, "schemathesis found failures: see its report above"
