"""Quiet hours: when, in the recipient's time zone, an SMS may go out again."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones


def parse_clock(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    return time(int(hours), int(minutes))


def zone_for(time_zone: str | None, phone: str) -> ZoneInfo | None:
    """The given zone, or the phone number's when it has exactly one."""
    name = time_zone
    if not name:
        try:
            zones = phone_zones.time_zones_for_number(phonenumbers.parse(phone, None))
        except phonenumbers.NumberParseException:
            return None
        name = zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else None
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """The end of the quiet window `now` falls in (aware UTC-comparable), or None if not quiet."""
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:  # wraps midnight, e.g. 21:00-09:00
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone)
