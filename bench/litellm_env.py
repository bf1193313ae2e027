"""Install the LiteLLM proxy for the benchmarks, in an environment of its own.

``litellm[proxy]`` cannot share this project's lock (it pins ``rich<14``, which the vendor
SDKs of ``test`` and ``all`` outgrew), and it must never be imported by the gateway. This
makes a virtual environment under ``~/.cerver/bench/litellm`` (or ``--path``) with
:data:`VERSION`, pinned so that every run compares against the same proxy; the benchmarks
then run the proxy with that interpreter (``CERVER_BENCH_LITELLM_PYTHON`` points elsewhere).

    python -m bench.litellm_env [--path DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "1.108.7"
"""The LiteLLM proxy the issue's figures were measured against (1.108); 1.110's ``proxy``
extra needs a ``litellm-proxy`` package that PyPI does not have."""

DEFAULT_PATH = Path.home() / ".cerver" / "bench" / "litellm"


def interpreter(env: Path) -> Path:
    return env / "bin" / "python"


def install(env: Path) -> Path:
    """Create ``env`` with ``litellm[proxy]==VERSION``; returns its interpreter."""
    uv = shutil.which("uv")
    python = interpreter(env)
    if uv is not None:
        subprocess.run([uv, "venv", "-q", "--allow-existing", str(env)], check=True)
        install_args = [uv, "pip", "install", "-q", "--python", str(python)]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        install_args = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*install_args, f"litellm[proxy]=={VERSION}"], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args()
    python = install(args.path)
    print(f"LiteLLM proxy {VERSION} is installed for the benchmarks: {python}")


if __name__ == "__main__":
    main()
