"""One failure vocabulary: every code is an ErrorCode with one class, and a Failure round-trips
to its exception and its JSON body unchanged (cerver/errors.py, cerver/failures.py)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

from cerver.errors import (
    ERROR_CLASSES,
    CerverError,
    ErrorCode,
    HarnessTimeout,
    NotFound,
    SessionBusy,
    StepLimitReached,
    UpstreamError,
    error_class,
)
from cerver.failures import Failure

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cerver", "harnesses", "compute", "judges")
# The mock upstream speaks the vendors' own error formats, whose codes are not Cerver's.
VENDOR_WIRE_FORMATS = ROOT / "cerver" / "testing" / "mock_upstream"


def _all_subclasses(cls: type[CerverError]) -> list[type[CerverError]]:
    found, pending = [], [cls]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(current.__subclasses__())
    return found


def _import_everything() -> None:
    """Import every module of the four packages so every error class is defined."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            parts = info.name.split(".")
            if "__main__" in parts or "migrations" in parts:  # run the CLI / alembic on import
                continue
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional SDK that is not installed here
                continue


def test_every_code_has_exactly_its_own_class() -> None:
    assert set(ERROR_CLASSES) == set(ErrorCode)
    for code, cls in ERROR_CLASSES.items():
        assert cls.code is code, f"{cls.__name__} has code {cls.code!r}, filed under {code!r}"
        assert error_class(code.value) is cls


def test_every_error_class_anywhere_has_a_code_of_the_enum() -> None:
    _import_everything()
    ours = [c for c in _all_subclasses(CerverError) if c.__module__.split(".")[0] in PACKAGES]
    assert len(ours) >= len(ErrorCode)
    for cls in ours:
        assert isinstance(cls.code, ErrorCode), f"{cls.__qualname__}.code is {cls.code!r}"
        # Filed under its code, or sharing the code of a relative filed there (UserError is the
        # grouping base of InvalidRequest): the code turns back into a class it is related to.
        owner = ERROR_CLASSES[cls.code]
        assert issubclass(cls, owner) or issubclass(owner, cls), cls


def _code_literals(path: Path) -> list[tuple[int, str]]:
    """String literals used as a code in ``path``: ``code="x"``, ``code = "x"``,
    ``{"code": "x"}`` and ``ErrorCode("x")``."""
    found: list[tuple[int, str]] = []

    def literal(node: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.keyword) and node.arg == "code":
            literal(node.value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                literal(node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    literal(value)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ErrorCode":
            literal(node.args[0] if node.args else None)
    return found


def test_every_code_used_in_the_source_is_an_enum_member() -> None:
    known = {code.value for code in ErrorCode}
    unknown = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if VENDOR_WIRE_FORMATS in path.parents:
                continue
            for line, value in _code_literals(path):
                if value not in known:
                    unknown.append(f"{path.relative_to(ROOT)}:{line}: {value!r}")
    assert not unknown, "codes outside ErrorCode:\n" + "\n".join(unknown)


def test_the_source_scan_sees_every_form_of_code(tmp_path: Path) -> None:
    # Guards against a scan that silently finds nothing.
    probe = tmp_path / "probe.py"
    probe.write_text('Error(code="a")\nx = {"code": "b"}\nErrorCode("c")\ncode = "d"\n')
    assert sorted(v for _, v in _code_literals(probe)) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "error",
    [
        NotFound("Session 'sess_x' not found.", context={"session_id": "sess_x"}),
        SessionBusy("Busy; retry.", context={"session_id": "sess_x"}),
        UpstreamError("Anthropic API error 400: bad", context={"status": 400}),
        UpstreamError("Anthropic API error 529: overloaded", retryable=True),
        StepLimitReached("stopped after max_steps=2", context={"max_steps": 2}),
        HarnessTimeout("the CLI did not finish"),
    ],
)
def test_a_failure_round_trips_through_its_exception_and_its_json(error: CerverError) -> None:
    failure = Failure.from_error(error)
    assert (failure.code, failure.message, failure.retryable, dict(failure.context)) == (
        error.code,
        error.message,
        error.retryable,
        error.context,
    )
    back = failure.to_error()
    assert type(back) is type(error)
    assert (back.message, back.context, back.retryable) == (
        error.message,
        error.context,
        error.retryable,
    )
    assert Failure.from_json(failure.to_json()) == failure
    assert Failure.from_error(back) == failure
    with pytest.raises(type(error)):
        failure.raise_()


def test_the_json_form_is_the_http_error_body() -> None:
    failure = Failure(ErrorCode.SESSION_BUSY, "busy", True, {"session_id": "sess_x"})
    assert failure.to_json() == {
        "detail": "busy",
        "code": "session_busy",
        "retryable": True,
        "context": {"session_id": "sess_x"},
    }
    # A body from before ``retryable`` was added reads as not retryable.
    assert Failure.from_json({"detail": "gone", "code": "interrupted"}).retryable is False


def test_a_code_outside_the_enum_is_refused_where_the_failure_is_made() -> None:
    with pytest.raises(ValueError):
        Failure("no_such_code", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Failure.from_json({"detail": "x", "code": "no_such_code"})
    with pytest.raises(ValueError):
        Failure.from_json({"detail": ["a list"], "code": "validation_error"})
    assert Failure("max_steps", "x").code is ErrorCode.MAX_STEPS  # type: ignore[arg-type]


def test_any_other_exception_is_an_internal_error_that_keeps_its_text_out() -> None:
    failure = Failure.from_exception(RuntimeError("password=hunter2 in a SQL string"))
    assert failure.code is ErrorCode.INTERNAL_ERROR and not failure.retryable
    assert "RuntimeError" in failure.message and "hunter2" not in failure.message
    assert type(failure.to_error()) is CerverError


def test_with_context_adds_without_changing_the_original() -> None:
    failure = Failure(ErrorCode.UPSTREAM_ERROR, "down", True, {"status": 503})
    more = failure.with_context(run_id="run_1")
    assert dict(more.context) == {"status": 503, "run_id": "run_1"}
    assert dict(failure.context) == {"status": 503}
    with pytest.raises(TypeError):
        failure.context["status"] = 200  # type: ignore[index]
    assert (more.code, more.message, more.retryable) == ("upstream_error", "down", True)
