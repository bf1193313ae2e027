"""``cerver.cli.setup_tools.install_bubblewrap``: the step of ``cerver setup`` that makes local
sandboxes isolated. apt-get is faked; nothing is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from cerver.cli import setup_tools

_REAL_WHICH = shutil.which
_REAL_RUN = subprocess.run


class FakeHost:
    """``shutil.which``, ``os.geteuid`` and ``apt-get`` of a pretend machine."""

    def __init__(self, *, installed: bool = False, apt: bool = True, root: bool = True) -> None:
        self.installed = installed
        self.apt = apt
        self.root = root
        self.lists_missing = False
        self.calls: list[list[str]] = []

    def which(self, name: str, path: str | None = None) -> str | None:
        present = {"bwrap": self.installed, "apt-get": self.apt}
        if name not in present:  # shutil.which is patched for everyone: bash stays real
            return _REAL_WHICH(name, path=path)
        return f"/usr/bin/{name}" if present[name] else None

    def run(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if argv[0] != "apt-get":  # subprocess.run is patched for everyone: bwrap stays real
            return _REAL_RUN(argv, **kwargs)  # type: ignore[call-overload]
        self.calls.append(argv)
        if argv[1] == "update":
            self.lists_missing = False
            return subprocess.CompletedProcess(argv, 0, "", "")
        if self.lists_missing:
            return subprocess.CompletedProcess(
                argv, 100, "", "E: Unable to locate package bubblewrap"
            )
        self.installed = True
        return subprocess.CompletedProcess(argv, 0, "", "")


def output(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


def install(host: FakeHost, console: Console, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(setup_tools.shutil, "which", host.which)
    monkeypatch.setattr(setup_tools.os, "geteuid", lambda: 0 if host.root else 1000)
    monkeypatch.setattr(setup_tools.subprocess, "run", host.run)
    return setup_tools.install_bubblewrap(console)


def test_nothing_to_do_when_installed(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeHost(installed=True)

    assert install(host, console, monkeypatch)
    assert host.calls == []


def test_root_installs_with_apt(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeHost()

    assert install(host, console, monkeypatch)
    assert host.calls == [["apt-get", "install", "-y", "bubblewrap"]]


def test_missing_package_lists_are_fetched_first(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = FakeHost()
    host.lists_missing = True

    assert install(host, console, monkeypatch)
    assert [call[1] for call in host.calls] == ["install", "update", "install"]
    assert "apt-get update" in output(console)


def test_without_root_prints_the_command(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeHost(root=False)

    assert not install(host, console, monkeypatch)
    assert host.calls == []
    assert "sudo apt-get install -y bubblewrap" in output(console)


def test_without_apt_names_the_package(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeHost(apt=False)

    assert not install(host, console, monkeypatch)
    assert "bubblewrap" in output(console)


def test_chromium_installs_both_packages(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {"chromium": False, "chromedriver": False}

    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if installed.get(name, name == "apt-get") else None

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        installed.update(chromium=True, chromedriver=True)
        return subprocess.CompletedProcess(argv, 0, "", "")

    calls: list[list[str]] = []
    monkeypatch.setattr(setup_tools.shutil, "which", which)
    monkeypatch.setattr(setup_tools.os, "geteuid", lambda: 0)
    monkeypatch.setattr(setup_tools.subprocess, "run", run)
    assert setup_tools.install_chromium(console)
    assert calls == [["apt-get", "install", "-y", "chromium", "chromium-driver"]]
    assert setup_tools.install_chromium(console) and len(calls) == 1  # nothing left to do


# -- `cerver setup --only` and the demo's confinement step ------------------------------------


def test_setup_only_runs_the_named_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cerver.cli.main import app

    ran: list[str] = []
    steps = {
        name: (lambda console, name=name: ran.append(name) or True) for name in setup_tools.STEPS
    }
    monkeypatch.setattr(setup_tools, "STEPS", steps)

    done = CliRunner().invoke(app, ["setup", "--only", "bubblewrap"])
    assert (done.exit_code, ran) == (0, ["bubblewrap"])

    unknown = CliRunner().invoke(app, ["setup", "--only", "docker"])
    assert unknown.exit_code == 2
    assert "Known: bubblewrap, chromium, codex, gemini-cli" in unknown.output


def demo_confinement(
    host: FakeHost, console: Console, monkeypatch: pytest.MonkeyPatch
) -> str | None:
    from cerver.cli.demo import ensure_confinement

    monkeypatch.setattr(setup_tools.shutil, "which", host.which)  # also what _bwrap sees
    monkeypatch.setattr(setup_tools.os, "geteuid", lambda: 0 if host.root else 1000)
    monkeypatch.setattr(setup_tools.subprocess, "run", host.run)
    return ensure_confinement(console)


def test_the_demo_without_root_stops_with_the_refusal_naming_the_command(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = FakeHost(root=False)

    refusal = demo_confinement(host, console, monkeypatch)

    assert refusal is not None
    assert "uv run cerver setup --only bubblewrap" in refusal
    assert "sudo apt-get install -y bubblewrap" in output(console)
    assert host.calls == []


def test_the_demo_as_root_installs_bubblewrap_first(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip(
            "the fake install is checked by running the real bwrap: apt-get install -y bubblewrap"
        )
    host = FakeHost(root=True)

    assert demo_confinement(host, console, monkeypatch) is None
    assert host.calls == [["apt-get", "install", "-y", "bubblewrap"]]


def test_the_demo_with_the_opt_out_does_not_install(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = FakeHost(root=True)
    monkeypatch.setenv("CERVER_LOCAL_ISOLATION", "none")

    assert demo_confinement(host, console, monkeypatch) is None
    assert host.calls == []


def test_the_demo_stops_with_the_refusal_when_it_cannot_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`cerver demo` on a host without bubblewrap, not root: the refusal names the command."""
    from typer.testing import CliRunner

    from cerver.cli.main import app
    from compute import _bwrap

    monkeypatch.setattr(_bwrap, "find_bwrap", lambda: None)
    monkeypatch.setattr(setup_tools.shutil, "which", lambda name, path=None: None)
    monkeypatch.setenv("CERVER_DATA_DIR", str(tmp_path))

    done = CliRunner().invoke(app, ["demo"])

    assert done.exit_code == 1
    assert "uv run cerver setup --only bubblewrap" in " ".join(done.output.split())
