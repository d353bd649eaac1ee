"""When each wave can run: from ``now``, inside a maintenance window, after the previous wave and its soak.

A wave must fit a window entirely (start and estimated end inside one occurrence); with no windows it starts
as soon as the previous one ends plus soak. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from orchestrator.model.policy import DAYS, MaintenanceWindow

SEARCH_DAYS = 15


def aware(now: datetime) -> datetime:
    """A naive ``now`` is taken as UTC; the plan speaks UTC throughout."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).replace(microsecond=0).isoformat()


def _occurrences(window: MaintenanceWindow, after: datetime) -> list[tuple[datetime, datetime]]:
    tz = ZoneInfo(window.timezone)
    first = after.astimezone(tz).date() - timedelta(days=1)
    out = []
    for offset in range(SEARCH_DAYS + 1):
        day = first + timedelta(days=offset)
        if DAYS[day.weekday()] not in window.days:
            continue
        start = datetime.combine(day, window.start, tz)
        end_day = day if window.end > window.start else day + timedelta(days=1)
        end = datetime.combine(end_day, window.end, tz)
        out.append((start.astimezone(UTC), end.astimezone(UTC)))
    return out


def earliest_fit(
    after: datetime, duration_s: int, windows: tuple[MaintenanceWindow, ...]
) -> tuple[datetime, str | None] | None:
    """The earliest start at or after ``after`` where ``duration_s`` fits one window; None if none does."""
    if not windows:
        return after, None
    best: tuple[datetime, str | None] | None = None
    need = timedelta(seconds=duration_s)
    for window in windows:
        for start, end in _occurrences(window, after):
            begin = max(start, after)
            if begin + need <= end and (best is None or begin < best[0]):
                best = (begin, window.label())
                break
    return best


def window_end(now: datetime, windows: tuple[MaintenanceWindow, ...]) -> datetime | None:
    """The end of the window occurrence ``now`` is in (the latest, if several overlap); None without windows
    or outside all of them."""
    ends = [end for w in windows for start, end in _occurrences(w, now) if start <= now < end]
    return max(ends) if ends else None
