"""When the weekly report is due: "<weekday> <HH:MM>" in a time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_PATTERN = re.compile(r"^\s*([A-Za-z]{3})\s+(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Weekly:
    weekday: int  # Monday = 0
    at: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, zone: str) -> Weekly:
        """`MON 08:00` and an IANA zone; ValueError names what is wrong."""
        match = _PATTERN.match(spec)
        if not match or match.group(1).upper() not in WEEKDAYS:
            raise ValueError(f"REPORTS_WEEKLY_AT must look like 'MON 08:00', not {spec!r}")
        hour, minute = int(match.group(2)), int(match.group(3))
        return cls(WEEKDAYS.index(match.group(1).upper()), time(hour, minute), ZoneInfo(zone))

    def last_due(self, now: datetime) -> datetime:
        """The latest scheduled moment at or before `now` (aware, in the zone)."""
        local = now.astimezone(self.zone)
        day = local.date() - timedelta(days=(local.weekday() - self.weekday) % 7)
        due = datetime.combine(day, self.at, self.zone)
        return (
            due if due <= local else datetime.combine(day - timedelta(days=7), self.at, self.zone)
        )


def previous_week(due: datetime) -> tuple[datetime, datetime]:
    """The seven local days before the due day: Monday 00:00 to Monday 00:00 for a Monday report."""
    zone = due.tzinfo
    end = datetime.combine(due.date(), time(), zone)
    start = datetime.combine(due.date() - timedelta(days=7), time(), zone)
    return start, end
