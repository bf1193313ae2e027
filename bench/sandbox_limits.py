"""What enforcing limits costs a local sandbox command, as a ratio measured in one run.

The same ``true`` command, in turn, in a sandbox whose commands join cgroups and take rlimits
(the default) and in one without (no cgroups, no ``prlimit``), both under bubblewrap.

    python -m bench.sandbox_limits [ROUNDS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from compute._cgroups import Cgroups
from compute._limits import Enforcement
from compute.base import SandboxSpec
from compute.local import LocalCompute, LocalSandbox


async def _once(sandbox: LocalSandbox) -> float:
    started = time.perf_counter()
    await sandbox.exec("true")
    return (time.perf_counter() - started) * 1000


async def main(rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="cerver-bench-"))
    limited = LocalCompute(root / "limited")
    bare = LocalCompute(root / "bare")
    bare._enforcement = Enforcement(Cgroups({}), None)
    with_limits, without = [], []
    async with (
        await limited.create(SandboxSpec(session_id="a")) as a,
        await bare.create(SandboxSpec(session_id="b")) as b,
    ):
        await _once(a), await _once(b)  # warm up
        for _ in range(rounds):  # interleaved, so load on the machine hits both alike
            with_limits.append(await _once(a))
            without.append(await _once(b))
    print(f"enforcement: {limited._enforcement.describe()}")
    a_ms, b_ms = statistics.median(with_limits), statistics.median(without)
    print(f"exec 'true' median: with limits {a_ms:.1f} ms, without {b_ms:.1f} ms")
    print(f"ratio with/without: {a_ms / b_ms:.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
