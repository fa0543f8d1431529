"""Alert rules: added and removed by admins, read once per evaluation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from fleet.alert_models import (
    ACTIVE_STATES,
    RULE_KINDS,
    AlertChannel,
    AlertLogKind,
    AlertRule,
    AlertRuleChannel,
    Incident,
    IncidentState,
    RuleKind,
)
from fleet.errors import InvalidInput, NotFound
from fleet.extensions import db
from fleet.services.alerts.audit import write_log
from fleet.services.alerts.channels import channels_named
from fleet.services.commit import commit_unique

log = structlog.get_logger("pulseboard.alerts")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
FILTER_KEYS = ("q", "site")
MAX_FOR_SECONDS = 7 * 86_400
DEFAULT_PERCENT = 50


@dataclass(frozen=True)
class RuleSpec:
    """A rule as an admin states it (CLI, dashboard)."""

    name: str
    kind: str
    channels: tuple[str, ...]
    for_seconds: int = 0
    site: str | None = None
    scope_filter: str | None = None
    percent: int | None = None
    min_devices: int | None = None
    remind_hours: float | None = None


@dataclass(frozen=True)
class Rule:
    """A rule as the evaluation reads it."""

    id: int
    name: str
    kind: str
    for_seconds: int
    site: str | None
    scope: dict[str, str]
    percent: int | None
    min_devices: int | None
    remind_hours: float | None
    channel_ids: tuple[int, ...]
    channel_names: tuple[str, ...] = field(default=())

    @property
    def per_site(self) -> bool:
        return self.kind == RuleKind.SITE_OUTAGE

    def covers(self, device: Any) -> bool:
        """True when `device` (uid, name, site) is in this rule's scope."""
        if self.site is not None and device.site != self.site:
            return False
        if "site" in self.scope and device.site != self.scope["site"]:
            return False
        q = self.scope.get("q")
        if q:
            haystack = " ".join(part or "" for part in (device.uid, device.name, device.site))
            return q.lower() in haystack.lower()
        return True

    def site_is_out(self, total: int, down: int) -> bool:
        """A site outage: at least `percent` % or `min_devices` of the site not connected.

        One silent device is a device incident, not a site outage, whatever the site's size.
        """
        if down < 2 or total == 0:
            return False
        if self.min_devices is not None and down >= self.min_devices:
            return True
        return self.percent is not None and down * 100 >= self.percent * total


def normalise_kind(kind: str) -> str:
    kind = (kind or "").strip().lower().replace("-", "_")
    if kind not in RULE_KINDS:
        raise InvalidInput(
            f"a rule's kind is one of {', '.join(k.replace('_', '-') for k in RULE_KINDS)}",
            {"field": "when"},
        )
    return kind


def _parse_filter(raw: str | None) -> str | None:
    """A saved fleet filter (the grid's URL query: `q=...&site=...`), normalised."""
    if raw is None or not raw.strip():
        return None
    pairs = parse_qsl(raw.strip().lstrip("?"), keep_blank_values=False)
    unknown = sorted({key for key, _ in pairs} - set(FILTER_KEYS))
    if unknown or not pairs:
        raise InvalidInput(
            f"a rule's filter takes {' and '.join(FILTER_KEYS)} (as in the grid's URL)",
            {"field": "filter", "unknown": unknown},
        )
    return urlencode(sorted(pairs))[:500]


def _validated(spec: RuleSpec) -> RuleSpec:
    if not NAME.match(spec.name or ""):
        raise InvalidInput(
            "a rule name is 1 to 100 letters, digits, '.', '_' or '-'", {"field": "name"}
        )
    kind = normalise_kind(spec.kind)
    if not spec.channels:
        raise InvalidInput("a rule routes to at least one channel", {"field": "channel"})
    if not 0 <= spec.for_seconds <= MAX_FOR_SECONDS:
        raise InvalidInput(f"--for is 0 to {MAX_FOR_SECONDS} seconds", {"field": "for"})
    if spec.remind_hours is not None and not 0 < spec.remind_hours <= 720:
        raise InvalidInput("reminders are every 0 to 720 hours", {"field": "remind_hours"})
    percent, min_devices = spec.percent, spec.min_devices
    if kind == RuleKind.SITE_OUTAGE:
        if spec.scope_filter:
            raise InvalidInput("a site-outage rule takes --site, not a filter", {"field": "filter"})
        if percent is None and min_devices is None:
            percent = DEFAULT_PERCENT
        if percent is not None and not 1 <= percent <= 100:
            raise InvalidInput("--percent is 1 to 100", {"field": "percent"})
        if min_devices is not None and min_devices < 2:
            raise InvalidInput("--devices is at least 2", {"field": "devices"})
    elif percent is not None or min_devices is not None:
        raise InvalidInput(
            "--percent and --devices are for site-outage rules", {"field": "percent"}
        )
    return RuleSpec(
        name=spec.name,
        kind=kind,
        channels=tuple(dict.fromkeys(spec.channels)),
        for_seconds=spec.for_seconds,
        site=(spec.site or "").strip() or None,
        scope_filter=_parse_filter(spec.scope_filter),
        percent=percent,
        min_devices=min_devices,
        remind_hours=spec.remind_hours,
    )


def add_rule(spec: RuleSpec, actor: str | None, now: datetime) -> Rule:
    """Save a rule and its routes; logged with its actor."""
    spec = _validated(spec)
    channels = channels_named(spec.channels)
    rule = AlertRule(
        name=spec.name,
        kind=spec.kind,
        for_seconds=spec.for_seconds,
        site=spec.site,
        scope_filter=spec.scope_filter,
        percent=spec.percent,
        min_devices=spec.min_devices,
        remind_hours=spec.remind_hours,
        created_at=now,
        created_by=actor,
    )
    db.session.add(rule)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise InvalidInput(
            f"a rule named {spec.name!r} already exists", {"field": "name"}
        ) from None
    db.session.add_all(AlertRuleChannel(rule_id=rule.id, channel_id=c.id) for c in channels)
    write_log(
        AlertLogKind.RULE_ADDED,
        f"rule {spec.name} added: {describe(_rule(rule, channels))}",
        actor,
        now,
    )
    commit_unique(f"a rule named {spec.name!r} already exists")
    log.info("alert_rule_added", rule=spec.name, kind=spec.kind, actor=actor)
    return _rule(rule, channels)


def _rule(row: AlertRule, channels: list) -> Rule:
    return Rule(
        id=row.id,
        name=row.name,
        kind=row.kind,
        for_seconds=row.for_seconds,
        site=row.site,
        scope=dict(parse_qsl(row.scope_filter or "")),
        percent=row.percent,
        min_devices=row.min_devices,
        remind_hours=row.remind_hours,
        channel_ids=tuple(c.id for c in channels),
        channel_names=tuple(c.name for c in channels),
    )


def load_rules() -> list[Rule]:
    """Every rule with its channels: two queries."""
    rows = list(db.session.execute(select(AlertRule).order_by(AlertRule.name)).scalars())
    if not rows:
        return []
    routes = db.session.execute(
        select(AlertRuleChannel.rule_id, AlertChannel.id, AlertChannel.name)
        .join(AlertChannel, AlertChannel.id == AlertRuleChannel.channel_id)
        .order_by(AlertChannel.name)
    ).all()
    by_rule: dict[int, list] = {}
    for route in routes:
        by_rule.setdefault(route.rule_id, []).append(route)
    return [_rule(row, by_rule.get(row.id, [])) for row in rows]


def any_rules() -> bool:
    return db.session.execute(select(AlertRule.id).limit(1)).first() is not None


def describe(rule: Rule) -> str:
    """One line: what fires, where, and whom it tells."""
    what = rule.kind.replace("_", "-")
    if rule.per_site:
        parts = [f"{rule.percent} %" if rule.percent else None]
        parts.append(f"{rule.min_devices} devices" if rule.min_devices else None)
        what += " (" + " or ".join(p for p in parts if p) + " not connected)"
    if rule.for_seconds:
        what += f" for {rule.for_seconds} s"
    scope = f"site {rule.site}" if rule.site else "the whole fleet"
    if rule.scope:
        scope = "filter " + urlencode(rule.scope)
    remind = f", reminders every {rule.remind_hours:g} h" if rule.remind_hours else ""
    return f"{what} in {scope} -> {', '.join(rule.channel_names) or '(no channel)'}{remind}"


def remove_rule(name: str, actor: str | None, now: datetime) -> None:
    """Delete a rule; its open incidents are resolved without a message."""
    row = db.session.execute(select(AlertRule).where(AlertRule.name == name)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no rule named {name!r}", {"rule": name})
    db.session.execute(
        Incident.__table__.update()
        .where(Incident.rule_id == row.id, Incident.state.in_(ACTIVE_STATES))
        .values(state=IncidentState.RESOLVED, resolved_at=now, next_reminder_at=None)
    )
    db.session.execute(delete(AlertRule).where(AlertRule.id == row.id))
    write_log(AlertLogKind.RULE_REMOVED, f"rule {name} removed", actor, now)
    db.session.commit()
    log.info("alert_rule_removed", rule=name, actor=actor)
