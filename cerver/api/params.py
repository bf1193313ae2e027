"""Query parameter types whose every accepted value the store can compare with its columns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["Timestamp"]


def _in_utc(value: datetime) -> datetime:
    # The store keeps UTC: a naive time is taken as UTC, an aware one converted. Converting
    # 0001-01-01T00:00+01:00 leaves the range of dates (year 0): refused here as a 422, where
    # it reached the database driver as a 500.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError(
            f"{value.isoformat()} is outside the dates the store can compare once in UTC "
            "(0001-01-01 to 9999-12-31 UTC)."
        ) from exc


#: An ISO 8601 date-time, naive meaning UTC, within the range the store holds in UTC.
Timestamp = Annotated[datetime, AfterValidator(_in_utc)]
