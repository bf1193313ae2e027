"""``cerver.cli.setup_tools.install_bubblewrap``: the step of ``cerver setup`` that makes local
sandboxes isolated. apt-get is faked; nothing is installed."""

from __future__ import annotations

import io
import subprocess

import pytest
from rich.console import Console

from cerver.cli import setup_tools


class FakeHost:
    """``shutil.which``, ``os.geteuid`` and ``apt-get`` of a pretend machine."""

    def __init__(self, *, installed: bool = False, apt: bool = True, root: bool = True) -> None:
        self.installed = installed
        self.apt = apt
        self.root = root
        self.lists_missing = False
        self.calls: list[list[str]] = []

    def which(self, name: str) -> str | None:
        present = {"bwrap": self.installed, "apt-get": self.apt}
        return f"/usr/bin/{name}" if present.get(name) else None

    def run(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
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


@pytest.fixture
def console() -> Console:
    return Console(file=io.StringIO(), width=200)


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
