"""Incidents: opened, folded, acknowledged, resolved; each change queues its notifications.

State changes are compare-and-set on `state`, so when a heartbeat and a sweep
race to resolve one incident exactly one of them queues the recovery notice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Integer, case, exists, func, insert, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from fleet.alert_models import (
    ACTIVE_STATES,
    CLAIMABLE_STATES,
    FIRING_STATES,
    AlertLogKind,
    Incident,
    IncidentDevice,
    IncidentState,
    Notification,
    NotificationKind,
    RuleKind,
)
from fleet.errors import InvalidInput, NotFound, StateConflict
from fleet.extensions import db
from fleet.models import Device
from fleet.rules import Status
from fleet.services.alerts import messages, outbox
from fleet.services.alerts.audit import write_log
from fleet.services.alerts.ruleset import Rule
from fleet.services.queries import among
from fleet.timeutil import UTCDateTime

MAX_NOTE = 1000


def device_subject(device_id: int) -> str:
    return f"device:{device_id}"


def site_subject(site: str) -> str:
    return f"site:{site}"


def incident_values(
    rule: Rule,
    now: datetime,
    *,
    site: str | None,
    device_id: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """The row of a new incident: pending while the rule's --for runs, else open."""
    pending = rule.for_seconds > 0
    return {
        "rule_id": rule.id,
        "rule_name": rule.name,
        "kind": rule.kind,
        "subject": device_subject(device_id) if device_id is not None else site_subject(site or ""),
        "site": site,
        "device_id": device_id,
        "parent_id": None,
        "state": IncidentState.PENDING if pending else IncidentState.OPEN,
        "started_at": now,
        "fires_at": now + timedelta(seconds=rule.for_seconds) if pending else None,
        "opened_at": None if pending else now,
        "quiet": quiet,
        "next_reminder_at": None if pending else _first_reminder(rule, now),
    }


def insert_incidents(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert incidents in one statement; returns the new ids by subject.

    A row whose rule and subject already have an active incident is skipped
    (ON CONFLICT DO NOTHING on the partial unique index), so two writers racing
    to open the same incident end with one, and the status change around the
    loser still commits.
    """
    if not rows:
        return {}
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(Incident)
        .values(rows)
        .on_conflict_do_nothing(
            index_elements=["rule_id", "subject"], index_where=text("state != 'resolved'")
        )
        .returning(Incident.id, Incident.subject)
    )
    return {row.subject: row.id for row in db.session.execute(statement)}


def open_incident(
    rule: Rule,
    now: datetime,
    *,
    site: str | None,
    device_id: int | None = None,
    quiet: bool = False,
) -> int | None:
    """Open (or start pending) one incident; None when one is already active for its subject."""
    values = incident_values(rule, now, site=site, device_id=device_id, quiet=quiet)
    return insert_incidents([values]).get(values["subject"])


def _first_reminder(rule: Rule, now: datetime) -> datetime | None:
    return None if not rule.remind_hours else now + timedelta(hours=rule.remind_hours)


def add_members(incident_id: int, device_ids: list[int], now: datetime) -> None:
    """Name these devices in the incident (those already named are left alone).

    One INSERT ... SELECT whatever the number of devices: a site outage names
    hundreds at once, and a statement per row would cost more than the sweep.
    """
    if not device_ids:
        return
    named = select(IncidentDevice.device_id).where(
        IncidentDevice.incident_id == incident_id, IncidentDevice.device_id == Device.id
    )
    chosen = select(
        literal(incident_id, type_=Integer()), Device.id, literal(now, type_=UTCDateTime())
    ).where(among(Device.id, device_ids), ~exists(named))
    db.session.execute(insert(IncidentDevice).from_select(MEMBER_COLUMNS, chosen))


MEMBER_COLUMNS = ["incident_id", "device_id", "added_at"]


def add_own_devices(pairs: list[tuple[int, int]], now: datetime) -> None:
    """Name each new device incident's own device, (incident id, device id), in one INSERT."""
    if pairs:
        rows = [{"incident_id": i, "device_id": d, "added_at": now} for i, d in pairs]
        db.session.execute(insert(IncidentDevice).values(rows))


def _incident_of_site(by_site: dict[str, int]) -> Any:
    """The incident id for each device's site, as a CASE over the few sites at hand.

    Not a join with `incident`: its rows were inserted in this very
    transaction, so PostgreSQL has no statistics for them and planned a scan
    of `incident` per device (a second for 10,000 devices; docs/benchmarks.md).
    """
    return case(by_site, value=Device.site)


def add_members_by_site(by_site: dict[str, int], device_ids: list[int], now: datetime) -> None:
    """Name each of these devices in its site's incident (site -> incident id): one INSERT."""
    if not by_site or not device_ids:
        return
    named = select(IncidentDevice.device_id).where(
        IncidentDevice.incident_id.in_(list(by_site.values())),
        IncidentDevice.device_id == Device.id,
    )
    chosen = select(_incident_of_site(by_site), Device.id, literal(now, type_=UTCDateTime())).where(
        among(Device.id, device_ids), Device.site.in_(list(by_site)), ~exists(named)
    )
    db.session.execute(insert(IncidentDevice).from_select(MEMBER_COLUMNS, chosen))


def name_silent_devices(by_site: dict[str, int], now: datetime) -> Counter[int]:
    """Name in each new site incident (site -> incident id) every device of its site not connected.

    One INSERT ... SELECT for all the sites; returns how many each incident names.
    """
    if not by_site:
        return Counter()
    chosen = select(_incident_of_site(by_site), Device.id, literal(now, type_=UTCDateTime())).where(
        Device.site.in_(list(by_site)),
        Device.status != Status.CONNECTED,
        Device.last_heartbeat_at.is_not(None),
    )
    statement = insert(IncidentDevice).from_select(MEMBER_COLUMNS, chosen)
    named = db.session.execute(statement.returning(IncidentDevice.incident_id)).scalars()
    return Counter(named)


def first_member_uids(incident_ids: list[int]) -> dict[int, list[str]]:
    """The uids each incident's message names: its first few, by uid (one query)."""
    if not incident_ids:
        return {}
    ranked = (
        select(
            IncidentDevice.incident_id,
            Device.uid,
            func.row_number()
            .over(partition_by=IncidentDevice.incident_id, order_by=Device.uid)
            .label("rank"),
        )
        .join(Device, Device.id == IncidentDevice.device_id)
        .where(IncidentDevice.incident_id.in_(incident_ids))
        .subquery()
    )
    rows = db.session.execute(
        select(ranked.c.incident_id, ranked.c.uid)
        .where(ranked.c.rank <= messages.SHOWN_DEVICES)
        .order_by(ranked.c.incident_id, ranked.c.uid)
    )
    found: dict[int, list[str]] = {}
    for row in rows:
        found.setdefault(row.incident_id, []).append(row.uid)
    return found


def facts_of(incident_id: int, *, still_down: list[str] | None = None) -> messages.IncidentFacts:
    """What a message about the incident says, read now."""
    incident = db.session.get(Incident, incident_id)
    uids = first_member_uids([incident_id]).get(incident_id, [])
    count = db.session.execute(
        select(func.count())
        .select_from(IncidentDevice)
        .where(IncidentDevice.incident_id == incident_id)
    ).scalar_one()
    site_size = None
    if incident.kind == RuleKind.SITE_OUTAGE:
        site_size = db.session.execute(
            select(func.count())
            .select_from(Device)
            .where(Device.site == incident.site, Device.last_heartbeat_at.is_not(None))
        ).scalar_one()
    return messages.IncidentFacts(
        id=incident.id,
        rule=incident.rule_name,
        kind=incident.kind,
        site=incident.site,
        device_uids=uids,
        device_count=count,
        site_size=site_size,
        opened_at=incident.opened_at or incident.started_at,
        resolved_at=incident.resolved_at,
        still_down=still_down,
    )


def announce(
    incident_id: int,
    rule: Rule,
    kind: str,
    now: datetime,
    delay: float = 0,
    facts: messages.IncidentFacts | None = None,
) -> None:
    """Queue the incident's `kind` message to each of its rule's channels."""
    payload = messages.incident_message(kind, facts or facts_of(incident_id))
    outbox.queue(rule.channel_ids, kind, payload, now, incident_id=incident_id, delay_seconds=delay)


def group_wait() -> float:
    """How long a device's opening message waits, so that a site outage can fold it first."""
    return current_app.config["ALERT_GROUP_WAIT_SECONDS"]


def fold_into(site_incident_id: int, site: str, now: datetime) -> None:
    """Fold the site's active device incidents into its outage; their queued messages drop."""
    folded = list(
        db.session.execute(
            update(Incident)
            .where(
                Incident.site == site,
                Incident.kind != RuleKind.SITE_OUTAGE,
                Incident.parent_id.is_(None),
                Incident.state.in_(ACTIVE_STATES),
            )
            .values(parent_id=site_incident_id, next_reminder_at=None)
            .returning(Incident.id, Incident.device_id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    outbox.cancel_queued([row.id for row in folded], (NotificationKind.OPENED,))
    add_members(site_incident_id, [row.device_id for row in folded], now)


def resolve(
    incident_id: int, rule: Rule | None, now: datetime, *, still_down: list[str] | None = None
) -> bool:
    """Resolve the incident; the recovery notice goes out only if its opening did.

    An incident whose opening message was still waiting (a device back within
    the group wait, or folded into a site outage) ends without a message at all.
    """
    row = db.session.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.state.in_(ACTIVE_STATES))
        .values(state=IncidentState.RESOLVED, resolved_at=now, next_reminder_at=None)
        .returning(Incident.quiet, Incident.parent_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    outbox.cancel_queued([incident_id], (NotificationKind.OPENED, NotificationKind.REMINDER))
    write_log(
        AlertLogKind.INCIDENT_RESOLVED,
        f"incident {incident_id} resolved",
        None,
        now,
        incident_id=incident_id,
    )
    if rule and not row.quiet and outbox.was_announced(incident_id):
        payload = messages.incident_message(
            NotificationKind.RESOLVED, facts_of(incident_id, still_down=still_down)
        )
        outbox.queue(
            rule.channel_ids, NotificationKind.RESOLVED, payload, now, incident_id=incident_id
        )
    return True


def fire(
    incident_id: int,
    rule: Rule,
    now: datetime,
    delay: float = 0,
    quiet: bool = False,
    facts: messages.IncidentFacts | None = None,
) -> None:
    """An incident that just opened: logged, and announced unless it is quiet."""
    fire_many(rule, [facts or facts_of(incident_id)], now, delay, quiet)


def fire_many(
    rule: Rule, opened: list[messages.IncidentFacts], now: datetime, delay: float, quiet: bool
) -> None:
    """Incidents of one rule that just opened: each logged, all announced in one INSERT."""
    for facts in opened:
        write_log(
            AlertLogKind.INCIDENT_OPENED,
            f"incident {facts.id} opened by rule {rule.name}",
            None,
            now,
            incident_id=facts.id,
        )
    if quiet:
        return
    payloads = [
        (facts.id, messages.incident_message(NotificationKind.OPENED, facts)) for facts in opened
    ]
    outbox.queue_many(rule.channel_ids, NotificationKind.OPENED, payloads, now, delay)


def acknowledge(incident_id: int, actor: str, note: str | None, now: datetime) -> Incident:
    """An operator takes the incident on: reminders stop; logged with the actor and note."""
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"a note has at most {MAX_NOTE} characters", {"field": "note"})
    incident = get_incident(incident_id)
    changed = db.session.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.state == IncidentState.OPEN)
        .values(
            state=IncidentState.ACKNOWLEDGED,
            acknowledged_at=now,
            acknowledged_by=actor,
            ack_note=note,
            next_reminder_at=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        raise StateConflict(
            f"incident {incident_id} is {incident.state}; only an open one can be acknowledged",
            {"state": incident.state},
        )
    write_log(
        AlertLogKind.INCIDENT_ACKNOWLEDGED,
        f"incident {incident_id} acknowledged" + (f": {note}" if note else ""),
        actor,
        now,
        incident_id=incident_id,
    )
    db.session.commit()
    db.session.expire_all()
    return get_incident(incident_id)


# Ids beyond a 63-bit integer cannot exist; asking the database would overflow.
MAX_ID = 2**63 - 1


def get_incident(incident_id: int) -> Incident:
    """The incident, or NotFound."""
    incident = db.session.get(Incident, incident_id) if 0 < incident_id <= MAX_ID else None
    if incident is None:
        raise NotFound(f"no incident {incident_id}", {"incident": incident_id})
    return incident


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    device_uids: list[str]
    notifications: list[Notification]


def acknowledge_view(incident_id: int, actor: str, note: str | None, now: datetime) -> IncidentView:
    """`acknowledge`, answered with the incident's devices and notifications."""
    incident = acknowledge(incident_id, actor, note, now)
    uids = _member_uids([incident.id]).get(incident.id, [])
    return IncidentView(incident, uids, outbox.delivery_states([incident.id]).get(incident.id, []))


STATE_ORDER = {IncidentState.OPEN: 0, IncidentState.ACKNOWLEDGED: 1, IncidentState.PENDING: 2}


def list_incidents(state: str | None = None, limit: int = 100) -> list[IncidentView]:
    """Incidents with their devices and notifications: active ones first, then newest."""
    query = select(Incident)
    if state is not None:
        query = query.where(Incident.state == state)
    active = query.where(Incident.state.in_(ACTIVE_STATES)) if state is None else query
    rows = list(db.session.execute(active.order_by(Incident.id.desc()).limit(limit)).scalars())
    if state is None and len(rows) < limit:
        done = query.where(Incident.state == IncidentState.RESOLVED)
        rows += db.session.execute(
            done.order_by(Incident.id.desc()).limit(limit - len(rows))
        ).scalars()
    rows.sort(key=lambda row: (STATE_ORDER.get(row.state, 3), -row.id))
    ids = [row.id for row in rows]
    uids = _member_uids(ids)
    notes = outbox.delivery_states(ids)
    return [IncidentView(row, uids.get(row.id, []), notes.get(row.id, [])) for row in rows]


def _member_uids(incident_ids: list[int]) -> dict[int, list[str]]:
    if not incident_ids:
        return {}
    rows = db.session.execute(
        select(IncidentDevice.incident_id, Device.uid)
        .join(Device, Device.id == IncidentDevice.device_id)
        .where(IncidentDevice.incident_id.in_(incident_ids))
        .order_by(Device.uid)
    )
    found: dict[int, list[str]] = {}
    for row in rows:
        found.setdefault(row.incident_id, []).append(row.uid)
    return found


def sites_with_device_incidents(sites: set[str]) -> set[str]:
    """Which of these sites have active device incidents not yet folded into an outage."""
    if not sites:
        return set()
    rows = db.session.execute(
        select(Incident.site)
        .where(
            Incident.site.in_(sites),
            Incident.kind != RuleKind.SITE_OUTAGE,
            Incident.parent_id.is_(None),
            Incident.state.in_(ACTIVE_STATES),
        )
        .distinct()
    )
    return set(rows.scalars())


def firing_site_incidents(sites: set[str]) -> dict[str, int]:
    """The firing site-outage incident of each of these sites that has one."""
    if not sites:
        return {}
    rows = db.session.execute(
        select(Incident.site, Incident.id).where(
            Incident.kind == RuleKind.SITE_OUTAGE,
            Incident.site.in_(sites),
            Incident.state.in_(FIRING_STATES),
        )
    )
    return {row.site: row.id for row in rows}


@dataclass(frozen=True)
class DeviceIncident:
    id: int
    state: str
    kind: str


def firing_by_device() -> dict[int, DeviceIncident]:
    """For the grid: each device's newest firing incident (its own, or its site's outage).

    One query over the firing incidents' members: proportional to the devices
    that are down, not to the fleet.
    """
    rows = db.session.execute(
        select(IncidentDevice.device_id, Incident.id, Incident.state, Incident.kind)
        .join(Incident, Incident.id == IncidentDevice.incident_id)
        .where(Incident.state.in_(FIRING_STATES))
        .order_by(Incident.id)
    )
    return {row.device_id: DeviceIncident(row.id, row.state, row.kind) for row in rows}


def pending_notifications() -> int:
    return db.session.execute(
        select(func.count())
        .select_from(Notification)
        .where(Notification.state.in_(CLAIMABLE_STATES))
    ).scalar_one()


def still_down_members(incident_id: int) -> list[tuple[int, str]]:
    """(id, uid) of the incident's devices that are not connected now."""
    rows = db.session.execute(
        select(Device.id, Device.uid)
        .join(IncidentDevice, IncidentDevice.device_id == Device.id)
        .where(IncidentDevice.incident_id == incident_id, Device.status != Status.CONNECTED)
        .order_by(Device.uid)
    )
    return [(row.id, row.uid) for row in rows]
