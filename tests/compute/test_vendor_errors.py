"""Each vendor SDK's exceptions translate through its one table (compute/base.py
``VendorErrors``): the same kinds of failure get the same Cerver class and retryability from
every provider. The SDKs' real exception classes are used where the SDK is installed."""

from __future__ import annotations

import importlib
import importlib.util

import httpx
import pytest

from cerver.errors import (
    CerverError,
    ComputeError,
    ComputeTimeout,
    InvalidRequest,
    NotConfigured,
    NotFound,
    SandboxGone,
)
from compute.base import MISSING, PASS_THROUGH, VendorErrors

Row = tuple[str, type[CerverError] | None, bool]
"""An SDK exception class name, the Cerver class it must become (``None``: raised unchanged)
with ``missing=NotFound``, and whether it is retryable."""

# Failures a later call may get past (rate limits, busy or unreachable services, timeouts,
# broken connections) are retryable; refusals (not found, bad credentials, a sandbox that is
# gone) are not; an SDK error the table does not name is a non-retryable ComputeError.
EXPECTED: dict[str, tuple[str, list[Row]]] = {
    "e2b": (
        "e2b.exceptions",
        [
            ("SandboxNotFoundException", NotFound, False),
            ("FileNotFoundException", NotFound, False),
            ("AuthenticationException", NotConfigured, False),
            ("RateLimitException", ComputeError, True),
            ("ServiceBusyException", ComputeError, True),
            ("TimeoutException", ComputeTimeout, True),
            ("SandboxUnreachableException", ComputeTimeout, True),
            ("InvalidArgumentException", ComputeError, False),
        ],
    ),
    "daytona": (
        "daytona",
        [
            ("DaytonaNotFoundError", NotFound, False),
            ("DaytonaFileNotFoundError", NotFound, False),
            ("DaytonaAuthenticationError", NotConfigured, False),
            ("DaytonaAuthorizationError", NotConfigured, False),
            ("DaytonaRateLimitError", ComputeError, True),
            ("DaytonaServiceUnavailableError", ComputeError, True),
            ("DaytonaConnectionTimeoutError", ComputeError, True),
            ("DaytonaProcessExecutionTimeoutError", ComputeTimeout, True),
            ("DaytonaGoneError", SandboxGone, False),
            ("DaytonaValidationError", ComputeError, False),
        ],
    ),
    "modal": (
        "modal.exception",
        [
            ("NotFoundError", NotFound, False),
            ("AuthError", NotConfigured, False),
            ("ResourceExhaustedError", ComputeError, True),
            ("ConnectionError", ComputeError, True),
            ("SandboxTimeoutError", ComputeTimeout, True),
            ("ExecTimeoutError", ComputeTimeout, True),
            ("SandboxTerminatedError", SandboxGone, False),
            ("InvalidError", ComputeError, False),
        ],
    ),
    "vercel": (
        "vercel.sandbox",
        [
            ("SandboxPathNotFoundError", NotFound, False),
            ("SandboxCredentialsError", NotConfigured, False),
            ("SandboxTimeoutError", ComputeTimeout, True),
            ("SandboxStreamError", ComputeError, True),
            ("SandboxTerminalStateError", ComputeError, False),
        ],
    ),
}


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of an SDK exception; some take required arguments we have no use for."""
    try:
        return cls("the vendor said no")
    except TypeError:
        exc = cls.__new__(cls)
        BaseException.__init__(exc, "the vendor said no")
        return exc


def _table(provider: str) -> VendorErrors:
    module = importlib.import_module(f"compute.{provider}")
    return module.VENDOR_ERRORS


@pytest.mark.parametrize("provider", sorted(EXPECTED))
def test_the_vendor_table_translates_its_sdk_exceptions(provider: str) -> None:
    sdk_module, rows = EXPECTED[provider]
    if importlib.util.find_spec(sdk_module.split(".")[0]) is None:
        pytest.skip(f"the {provider} SDK is not installed: pip install 'cerver[{provider}]'")
    sdk = importlib.import_module(sdk_module)
    table = _table(provider)
    compute = next(
        getattr(importlib.import_module(f"compute.{provider}"), name)
        for name in dir(importlib.import_module(f"compute.{provider}"))
        if name.endswith("Compute") and name != "Compute"
    )
    assert compute.vendor_errors is table and compute.credentials == table.credentials
    for name, expected, retryable in rows:
        raised = _instance(getattr(sdk, name))
        translated = table.translate_exception(raised, "do the thing", missing=NotFound)
        assert type(translated) is expected, f"{provider}: {name} -> {type(translated)}"
        assert isinstance(translated, CerverError)
        assert translated.retryable is retryable, f"{provider}: {name}"
        assert translated.context["vendor"] == table.vendor
        if expected is NotConfigured:
            for variable in table.credentials:
                assert variable in translated.message
        else:
            assert "could not do the thing" in translated.message
    # "Not found" is what the call site says: mid-command, a missing sandbox is a failure.
    missing = _instance(getattr(sdk, rows[0][0]))
    assert type(table.translate_exception(missing, "run a command")) is ComputeError


@pytest.mark.parametrize("provider", [*sorted(EXPECTED), "relay"])
def test_transport_failures_are_retryable_everywhere(provider: str) -> None:
    # The tables themselves never import their SDK.
    table = _table(provider)
    refused = table.translate_exception(httpx.ConnectError("connection refused"), "connect")
    assert type(refused) is ComputeError and refused.retryable
    slow = table.translate_exception(httpx.ReadTimeout("read timed out"), "read")
    assert type(slow) is ComputeTimeout and slow.retryable
    ours = InvalidRequest("a path escapes the workspace")
    assert table.translate_exception(ours, "write") is ours


def test_e2b_lets_our_own_deadline_through() -> None:
    deadline = TimeoutError()
    assert _table("e2b").translate_exception(deadline, "run the command") is deadline


def test_the_relay_table_names_the_fix_and_the_relay() -> None:
    where = {"base_url": "http://10.0.0.7:8787"}
    error = _table("relay").translate_exception(
        httpx.ConnectError("refused"), "create a sandbox", context=where
    )
    assert "cerver relay" in error.message
    assert error.context["base_url"] == "http://10.0.0.7:8787"


class _SdkError(Exception):
    """TEST DOUBLE: a vendor SDK's base exception."""


class _SdkQuota(_SdkError):
    pass


class _SdkQuotaHard(_SdkQuota):
    pass


async def test_a_table_matches_along_the_mro_and_translate_chains_the_cause() -> None:
    table = VendorErrors(
        "Acme",
        {
            "_SdkQuota": (ComputeError, True),
            "_SdkError": (MISSING, False),
            "KeyError": (PASS_THROUGH, False),
        },
        credentials=("ACME_KEY",),
    )
    assert table.outcome(_SdkQuotaHard()) == (ComputeError, True)  # its base's entry
    assert table.outcome(_SdkError()) == (MISSING, False)
    assert table.outcome(ValueError()) == table.default
    with pytest.raises(ComputeError) as info:
        async with table.translate("bill", context={"sandbox_id": "sbx_1"}):
            raise _SdkQuotaHard("over quota")
    assert info.value.retryable and isinstance(info.value.__cause__, _SdkQuotaHard)
    assert info.value.context == {
        "vendor": "Acme",
        "exception": "_SdkQuotaHard",
        "sandbox_id": "sbx_1",
    }
    with pytest.raises(NotFound):
        async with table.translate("read", missing=NotFound):
            raise _SdkError("no such file")
    with pytest.raises(KeyError):
        async with table.translate("look up"):
            raise KeyError("passes through")


def test_an_http_status_on_the_exception_picks_the_outcome() -> None:
    class ApiError(Exception):
        def __init__(self, status_code: int) -> None:
            super().__init__(f"HTTP {status_code}")
            self.status_code = status_code

    errors = VendorErrors(
        "Acme",
        {"ApiError": (ComputeError, False)},
        credentials=("ACME_KEY",),
        statuses={404: (MISSING, False), 403: (NotConfigured, False), 503: (ComputeError, True)},
    )
    missing = errors.translate_exception(ApiError(404), "find it", missing=NotFound)
    assert isinstance(missing, NotFound)
    refused = errors.translate_exception(ApiError(403), "create it")
    assert isinstance(refused, NotConfigured) and "ACME_KEY" in refused.message
    assert errors.translate_exception(ApiError(503), "create it").retryable is True
    other = errors.translate_exception(ApiError(418), "create it")  # falls to the class table
    assert type(other) is ComputeError and other.retryable is False
