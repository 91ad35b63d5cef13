"""Settings of the reports service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from crm_kernel.settings import ServiceSettings


class ReportsSettings(ServiceSettings):
    service_name: ClassVar[str] = "reports"

    # Deals of a marketing event's participants created this long after it count as following it.
    event_follow_up_days: int = Field(default=90, alias="REPORTS_EVENT_FOLLOW_UP_DAYS")
    # A customer with no purchase or activity for this long when their own interval is unknown.
    churn_default_interval_days: int = Field(default=90, alias="REPORTS_CHURN_DEFAULT_DAYS")
    # Predicted CLV looks this many years ahead.
    clv_horizon_years: int = Field(default=3, alias="REPORTS_CLV_HORIZON_YEARS")
    # How often the RFM/CLV scores are recomputed and changes published (0: never).
    scoring_interval_seconds: float = Field(default=3600, alias="REPORTS_SCORING_INTERVAL_SECONDS")
    # The weekly report: "<weekday> <HH:MM>" in `report_time_zone` (e.g. "MON 08:00").
    weekly_report_at: str = Field(default="MON 08:00", alias="REPORTS_WEEKLY_AT")
    report_time_zone: str = Field(default="UTC", alias="REPORTS_TIME_ZONE")
    # How often the scheduler checks whether a weekly report is due.
    scheduler_tick_seconds: float = Field(default=60, alias="REPORTS_SCHEDULER_TICK_SECONDS")
