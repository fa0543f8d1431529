"""The alerts' log: rule and channel changes, incidents and monitoring gaps, with their actor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from fleet.alert_models import AlertLog
from fleet.extensions import db


def write_log(
    kind: str,
    message: str,
    actor: str | None,
    now: datetime,
    *,
    incident_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add a log entry to the current transaction."""
    db.session.add(
        AlertLog(
            kind=kind,
            message=message[:500],
            actor=actor,
            incident_id=incident_id,
            details=details,
            created_at=now,
        )
    )


def recent_log(limit: int = 50) -> list[AlertLog]:
    """The newest entries first."""
    return list(
        db.session.execute(
            select(AlertLog).order_by(AlertLog.created_at.desc(), AlertLog.id.desc()).limit(limit)
        ).scalars()
    )
