"""The default pipeline created on first start, in English or Russian (`CRM_LOCALE`)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from crm_deals.pipelines.schemas import StageIn, StageKind

# Fixed ids: replicas starting together all try to insert the same rows, and
# exactly one insert wins (ON CONFLICT DO NOTHING), whatever the timing.
_NAMESPACE = uuid.UUID("6f1d3a52-3c1e-4f53-9a55-1c0d3f2b8e11")
DEFAULT_PIPELINE_ID = str(uuid.uuid5(_NAMESPACE, "default-pipeline"))

_STAGES: tuple[tuple[str, str, int, StageKind], ...] = (
    ("New request", "Заявка", 10, StageKind.OPEN),
    ("First call", "Первый звонок", 20, StageKind.OPEN),
    ("Proposal sent", "Отправлено КП", 50, StageKind.OPEN),
    ("Meeting", "Встреча", 70, StageKind.OPEN),
    ("Won", "Продажа", 100, StageKind.WON),
    ("Lost", "Отказ", 0, StageKind.LOST),
)
_PIPELINE_NAME = {"en": "Sales", "ru": "Продажи"}


def default_stage_id(position: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"default-stage-{position}"))


def default_pipeline_name(locale: str) -> str:
    return _PIPELINE_NAME.get(locale, _PIPELINE_NAME["en"])


def default_stages(locale: str) -> list[StageIn]:
    """The default stages, named in the locale (English for any other)."""
    return [
        StageIn(name=ru if locale == "ru" else en, probability=Decimal(p), kind=kind)
        for en, ru, p, kind in _STAGES
    ]
