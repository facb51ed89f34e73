"""Times other systems send (an event's `time`, a click's `clicked_at`): read with their time zone.

The store keeps times as UTC without a zone (`datetime.now(timezone.utc).replace(tzinfo=None)` throughout),
so a time given with an offset is converted to UTC, and one given without an offset is taken as UTC
(as the CLI's `--as-of` documents). Comparing a zoned time with a naive one is a TypeError in Python:
converting at the door means no later comparison can meet one.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

MAX_TIME_CHARS = 64


def parse_utc(text: object) -> datetime:
    """A time as naive UTC; ValueError naming what was given when it is not a time."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a time such as 2026-12-07T16:16:00+08:00, got {text!r}")
    if len(text) > MAX_TIME_CHARS:
        raise ValueError(f"a time of {len(text)} characters; at most {MAX_TIME_CHARS}")
    if not text.strip()[:1].isdigit():  # pandas would read "now" and "today" as times
        raise ValueError(f"not a time: {text!r}")
    try:
        moment = pd.Timestamp(text.strip())
    except (ValueError, OverflowError) as err:
        raise ValueError(f"not a time: {text!r} ({err})") from err
    if moment is pd.NaT:
        raise ValueError(f"not a time: {text!r}")
    if moment.tzinfo is not None:
        moment = moment.tz_convert(timezone.utc).tz_localize(None)
    return moment.to_pydatetime()


def utc_text(text: object) -> str:
    """A time in RFC 3339 form in UTC (2026-12-07T08:16:00Z): how an event's time is stored."""
    moment = parse_utc(text)
    stamp = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return stamp + "Z"
