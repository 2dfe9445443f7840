"""LangFlow's Current Date: the date and time now, in a named timezone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def current_date(timezone: str = "UTC") -> str:
    """``Current date and time in {timezone}: YYYY-MM-DD HH:MM:SS TZ``, as LangFlow says it."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return f"Error: unknown timezone {timezone!r}"
    now = datetime.now(zone)
    return f"Current date and time in {timezone}: {now.strftime('%Y-%m-%d %H:%M:%S %Z')}"
