"""Rule evaluation, driven by status changes: the cost is O(changes), never a fleet scan.

`on_status_events` runs inside the transaction that records the changes (it is
called by `fleet.services.events.record_events`), so an incident and its
outbox rows commit or roll back with them. `tick` does what time alone
triggers: pending incidents whose --for has run, reminders, flapping ending.
Each reads only the incidents due, by index.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import structlog
from flask import current_app
from sqlalchemy import case, func, or_, select, update

from fleet.alert_models import (
    ACTIVE_STATES,
    AlertLog,
    AlertLogKind,
    Incident,
    IncidentState,
    NotificationKind,
    RuleKind,
)
from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.rules import Source, Status
from fleet.services.alerts import incidents, messages, outbox
from fleet.services.alerts.audit import write_log
from fleet.services.alerts.ruleset import Rule, load_rules
from fleet.services.device_state import thresholds_of
from fleet.services.events import EventKind
from fleet.services.queries import among, flap_settings

log = structlog.get_logger("pulseboard.alerts")

DEVICE_COLUMNS = (
    Device.id,
    Device.uid,
    Device.name,
    Device.site,
    Device.status,
    Device.last_heartbeat_at,
    Device.heartbeat_interval_seconds,
    Device.grace_period_seconds,
    Device.disconnect_after_seconds,
    Device.expected_off,
    Device.expected_on_at,
)

# Expected off, or expected on again but still within its grace since (the opening
# check pending): such a device opens no incident and is no part of a site outage,
# so a shop's screens coming on one by one at opening raise nothing.
EXCUSED = or_(Device.expected_off.is_not(None), Device.expected_on_at.is_not(None))


def excused(device: Any) -> bool:
    """`EXCUSED` for a device row read with DEVICE_COLUMNS."""
    return device.expected_off is not None or device.expected_on_at is not None


# The events rules are evaluated from: status changes, and a device found silent
# when its site opened (its status did not change, but it is now an outage).
ALERTING_KINDS = frozenset({EventKind.STATUS, EventKind.SILENT_AT_OPENING})


def on_status_events(events: list[Any]) -> list[Any]:
    """Evaluate the rules against these events' changes; returns the events, late ones marked.

    1. Load the rules (nothing more happens without any) and the changed devices.
    2. Mark the changes a late sweep made (a monitoring gap): they open quiet incidents.
    3. Site-outage rules, per site touched, so that device incidents fold into them.
    4. Device rules (disconnected, not connected, flapping), per changed device.
    5. One monitoring-gap notice when this batch was late.
    """
    changes = [event for event in events if event.kind in ALERTING_KINDS]
    if not changes:
        return events
    rules = load_rules()
    if not rules:
        return events
    now = changes[-1].created_at
    devices = _devices({event.device_id for event in changes})
    late = _late_changes(changes, devices)
    if late:
        events = [_mark_late(event, late) for event in events]
    quiet = bool(late)
    _evaluate_sites([r for r in rules if r.per_site], devices, now, quiet)
    _evaluate_devices([r for r in rules if not r.per_site], changes, devices, now, quiet)
    if late:
        _note_gap(rules, late, now)
    return events


def _devices(ids: set[int]) -> dict[int, Any]:
    # A device never seen online raises nothing: it is left out here.
    rows = db.session.execute(
        select(*DEVICE_COLUMNS).where(among(Device.id, ids), Device.last_heartbeat_at.is_not(None))
    )
    return {row.id: row for row in rows}


# --- monitoring gaps ----------------------------------------------------------------


def _late_changes(changes: list[Any], devices: dict[int, Any]) -> dict[int, float]:
    """Sweep changes made well after the device crossed its threshold, by device: seconds late."""
    allowed = current_app.config["ALERT_MONITORING_GAP_SECONDS"]
    late: dict[int, float] = {}
    for event in changes:
        device = devices.get(event.device_id)
        if (
            device is None
            or event.kind != EventKind.STATUS
            # A device expected off raises nothing, late or not: no gap notice on its account.
            or event.expected_off is not None
            or event.source != Source.SYSTEM
            or event.heartbeat_age_seconds is None
        ):
            continue
        thresholds = thresholds_of(device)
        crossed = (
            thresholds.disconnect_after
            if event.to_status == Status.DISCONNECTED
            else thresholds.interval + thresholds.grace
        )
        lateness = event.heartbeat_age_seconds - crossed
        if lateness > allowed:
            late[event.device_id] = lateness
    return late


def _mark_late(event: Any, late: dict[int, float]) -> Any:
    if event.kind != "status" or event.device_id not in late:
        return event
    details = {
        **(event.details or {}),
        "monitoring_gap": True,
        "late_by_seconds": round(late[event.device_id]),
    }
    return dataclasses.replace(event, details=details)


GAP_NOTICE_EVERY = timedelta(minutes=10)


def _note_gap(rules: list[Rule], late: dict[int, float], now: datetime) -> None:
    """One notice for the whole gap: a sweep's later chunks find the first one and stay silent."""
    recent = db.session.execute(
        select(AlertLog.id)
        .where(
            AlertLog.kind == AlertLogKind.MONITORING_GAP,
            AlertLog.created_at >= now - GAP_NOTICE_EVERY,
        )
        .limit(1)
    ).first()
    if recent is not None:
        return
    longest = max(late.values())
    write_log(
        AlertLogKind.MONITORING_GAP,
        f"monitoring gap: sweeps stopped for about {round(longest / 60)} min; "
        f"{len(late)} late change(s) opened incidents without a message each",
        None,
        now,
        details={"late_devices": len(late), "late_by_seconds": round(longest)},
    )
    channels = sorted({channel for rule in rules for channel in rule.channel_ids})
    outbox.queue(
        channels,
        NotificationKind.MONITORING_GAP,
        messages.gap_message(len(late), longest, now),
        now,
    )
    log.warning("monitoring_gap", late_devices=len(late), late_by_seconds=round(longest))


# --- site outages -------------------------------------------------------------------


def _evaluate_sites(rules: list[Rule], devices: dict[int, Any], now: datetime, quiet: bool) -> None:
    """Open, grow or resolve each touched site's outage incident, per site-outage rule."""
    down: dict[str, list[int]] = {}
    for device in devices.values():
        if device.site:
            changed = down.setdefault(device.site, [])
            # A device expected off is not part of its site's outage (it may still end one).
            if device.status != Status.CONNECTED and not excused(device):
                changed.append(device.id)
    if not rules or not down:
        return
    counts = _site_counts(set(down))
    active = _active_incidents([r.id for r in rules], [incidents.site_subject(s) for s in down])
    with_device_incidents = incidents.sites_with_device_incidents(set(down))
    growing: dict[str, int] = {}
    for rule in rules:
        to_open: dict[str, int] = {}
        for site in sorted(down):
            if (rule.site and rule.site != site) or site not in counts:
                continue
            total, silent = counts[site]
            incident = active.get((rule.id, incidents.site_subject(site)))
            if rule.site_is_out(total, silent) and incident is None:
                to_open[site] = total
            elif rule.site_is_out(total, silent):
                growing[site] = incident.id
            elif incident is not None:
                _resolve_site(incident, rule, now)
        _open_sites(rule, to_open, now, quiet, with_device_incidents)
    silent_now = [device_id for site in growing for device_id in down[site]]
    incidents.add_members_by_site(growing, silent_now, now)


def _site_counts(sites: set[str]) -> dict[str, tuple[int, int]]:
    """(devices, devices not connected) per site: only devices seen online and expected on."""
    down = func.sum(case((Device.status != Status.CONNECTED, 1), else_=0))
    rows = db.session.execute(
        select(Device.site, func.count(), down)
        .where(
            Device.site.in_(sites),
            Device.last_heartbeat_at.is_not(None),
            ~EXCUSED,
        )
        .group_by(Device.site)
    )
    return {row[0]: (row[1], int(row[2] or 0)) for row in rows}


def _active_incidents(rule_ids: list[int], subjects: list[str]) -> dict[tuple[int, str], Incident]:
    if not rule_ids or not subjects:
        return {}
    rows = db.session.execute(
        select(Incident).where(
            Incident.rule_id.in_(rule_ids),
            among(Incident.subject, subjects),
            Incident.state.in_(ACTIVE_STATES),
        )
    ).scalars()
    return {(row.rule_id, row.subject): row for row in rows}


def _open_sites(
    rule: Rule, sizes: dict[str, int], now: datetime, quiet: bool, with_device_incidents: set[str]
) -> None:
    """Open the outage incidents of these sites for one rule, a statement per step, not per site."""
    rows = [incidents.incident_values(rule, now, site=site, quiet=quiet) for site in sizes]
    opened = _inserted_by_site(rows, sizes)
    named = incidents.name_silent_devices(opened, now)
    if rule.for_seconds or not opened:
        return
    for site, incident_id in opened.items():
        if site in with_device_incidents:
            incidents.fold_into(incident_id, site, now)
    uids = incidents.first_member_uids(list(opened.values()))
    facts = [
        messages.IncidentFacts(
            id=incident_id,
            rule=rule.name,
            kind=rule.kind,
            site=site,
            device_uids=uids.get(incident_id, []),
            device_count=named[incident_id],
            site_size=sizes[site],
            opened_at=now,
        )
        for site, incident_id in opened.items()
    ]
    incidents.fire_many(rule, facts, now, 0, quiet)


def _inserted_by_site(rows: list[dict[str, Any]], sizes: dict[str, int]) -> dict[str, int]:
    inserted = incidents.insert_incidents(rows)
    return {
        site: inserted[incidents.site_subject(site)]
        for site in sizes
        if incidents.site_subject(site) in inserted
    }


def _site_fires(incident_id: int, rule: Rule, site: str, now: datetime, quiet: bool) -> None:
    incidents.fold_into(incident_id, site, now)
    incidents.fire(incident_id, rule, now, quiet=quiet)


def _resolve_site(incident: Incident, rule: Rule, now: datetime) -> None:
    still_down = incidents.still_down_members(incident.id)
    if not incidents.resolve(incident.id, rule, now, still_down=[uid for _, uid in still_down]):
        return
    _unfold(incident.id, still_down, now)


def _unfold(site_incident_id: int, still_down: list[tuple[int, str]], now: datetime) -> None:
    """Devices still silent when their site recovers go on as incidents of their own."""
    children = db.session.execute(
        update(Incident)
        .where(Incident.parent_id == site_incident_id, Incident.state.in_(ACTIVE_STATES))
        .values(parent_id=None)
        .returning(Incident.id, Incident.device_id)
        .execution_options(synchronize_session=False)
    ).all()
    covered = {row.device_id for row in children}
    rules = {rule.id: rule for rule in load_rules() if not rule.per_site}
    for row in children:
        child = db.session.get(Incident, row.id)
        rule = rules.get(child.rule_id)
        if rule and not child.quiet and not outbox.was_announced(row.id):
            incidents.announce(row.id, rule, NotificationKind.OPENED, now)
    devices = _devices({device_id for device_id, _ in still_down if device_id not in covered})
    for rule in rules.values():
        due = [
            d
            for d in devices.values()
            if rule.covers(d) and _holds(rule, d.status) and not excused(d)
        ]
        _open_devices(rule, due, now, quiet=False, firing_sites={}, delay=0)


# --- device rules -------------------------------------------------------------------


def _holds(rule: Rule, status: str) -> bool:
    if rule.kind == RuleKind.DISCONNECTED:
        return status == Status.DISCONNECTED
    if rule.kind == RuleKind.NOT_CONNECTED:
        return status != Status.CONNECTED
    return False  # flapping is decided by counting, in `_flapping_now`


def _evaluate_devices(
    rules: list[Rule], changes: list[Any], devices: dict[int, Any], now: datetime, quiet: bool
) -> None:
    if not rules or not devices:
        return
    firing_sites = incidents.firing_site_incidents({d.site for d in devices.values() if d.site})
    latest = {
        event.device_id: event
        for event in changes
        if event.device_id in devices and not _folded(devices[event.device_id], event, firing_sites)
    }
    if not latest:
        return
    active = _active_incidents(
        [rule.id for rule in rules], [incidents.device_subject(i) for i in latest]
    )
    flapping = _flapping_now(rules, latest, changes, now)
    for rule in rules:
        to_open = []
        for device_id, event in latest.items():
            device = devices[device_id]
            if not rule.covers(device):
                continue
            incident = active.get((rule.id, incidents.device_subject(device_id)))
            holds = (
                device_id in flapping
                if rule.kind == RuleKind.FLAPPING
                else _holds(rule, event.to_status)
            )
            # Expected off (off hours, maintenance): nothing fires, but a recovery still ends one.
            if holds and incident is None and not excused(device):
                to_open.append(device)
            elif incident is not None and event.kind == EventKind.SILENT_AT_OPENING:
                _restart_wait(incident, rule, now)
            elif not holds and incident is not None and rule.kind != RuleKind.FLAPPING:
                incidents.resolve(incident.id, rule, now)
        _open_devices(rule, to_open, now, quiet=quiet, firing_sites=firing_sites)


def _restart_wait(incident: Incident, rule: Rule, now: datetime) -> None:
    """A pending incident of a device silent at opening is measured from the opening."""
    if incident.state == IncidentState.PENDING:
        db.session.execute(
            update(Incident)
            .where(Incident.id == incident.id, Incident.state == IncidentState.PENDING)
            .values(fires_at=now + timedelta(seconds=rule.for_seconds))
            .execution_options(synchronize_session=False)
        )


def _folded(device: Any, event: Any, firing_sites: dict[str, int]) -> bool:
    """A device gone silent in a site with a firing outage: the site stage already named it.

    Nothing is left to decide for it here (no incident of its own opens, none
    can end while it is silent), so a power cut's thousand devices cost nothing.
    """
    return bool(device.site) and device.site in firing_sites and event.to_status != Status.CONNECTED


def _flapping_now(
    rules: list[Rule], latest: dict[int, Any], changes: list[Any], now: datetime
) -> set[int]:
    """Devices whose status events in the flap window reach the threshold, counting this batch's."""
    if not any(rule.kind == RuleKind.FLAPPING for rule in rules) or not latest:
        return set()
    settings = flap_settings()
    stored = dict(
        db.session.execute(
            select(DeviceEvent.device_id, func.count())
            .where(
                among(DeviceEvent.device_id, list(latest)),
                DeviceEvent.kind == "status",
                DeviceEvent.expected_off.is_(None),
                DeviceEvent.created_at >= settings.since(now),
            )
            .group_by(DeviceEvent.device_id)
        ).all()
    )
    batch = Counter(
        event.device_id
        for event in changes
        if event.kind == EventKind.STATUS and event.expected_off is None
    )
    return {i for i in latest if stored.get(i, 0) + batch[i] >= settings.threshold}


def _open_devices(
    rule: Rule,
    devices: list[Any],
    now: datetime,
    *,
    quiet: bool,
    firing_sites: dict[str, int],
    delay: float | None = None,
) -> None:
    """Open the rule's incidents for these devices, a statement per step rather than per device.

    A device in a site whose outage is firing is named in that incident
    instead: the site's outage already speaks for it.
    """
    folded = [d for d in devices if d.site in firing_sites]
    incidents.add_members_by_site(
        {d.site: firing_sites[d.site] for d in folded}, [d.id for d in folded], now
    )
    own = [d for d in devices if d.site not in firing_sites]
    rows = [
        incidents.incident_values(rule, now, site=d.site, device_id=d.id, quiet=quiet) for d in own
    ]
    inserted = incidents.insert_incidents(rows)
    # A device whose incident is active already (a racing writer opened it) is skipped.
    opened = [
        (inserted[incidents.device_subject(d.id)], d)
        for d in own
        if incidents.device_subject(d.id) in inserted
    ]
    incidents.add_own_devices([(incident_id, d.id) for incident_id, d in opened], now)
    if rule.for_seconds or not opened:
        return
    # Known already, so not read back per incident (facts_of): one device, named by uid.
    facts = [
        messages.IncidentFacts(
            id=incident_id,
            rule=rule.name,
            kind=rule.kind,
            site=d.site,
            device_uids=[d.uid],
            device_count=1,
            site_size=None,
            opened_at=now,
        )
        for incident_id, d in opened
    ]
    wait = incidents.group_wait() if delay is None else delay
    incidents.fire_many(rule, facts, now, wait, quiet)


# --- what time alone triggers -------------------------------------------------------


def tick(now: datetime) -> dict[str, int]:
    """Open the pending incidents whose --for has run, send reminders, end flapping; commits."""
    rules = {rule.id: rule for rule in load_rules()}
    report = {
        "opened": _promote_pending(rules, now),
        "reminders": _send_reminders(rules, now),
        "flapping_resolved": _end_flapping(rules, now),
    }
    db.session.commit()
    return report


def _promote_pending(rules: dict[int, Rule], now: datetime) -> int:
    due = list(
        db.session.execute(
            select(Incident).where(
                Incident.state == IncidentState.PENDING,
                Incident.fires_at <= now,
                # A device gone expected off before its --for ran fires nothing while off:
                # the incident waits, and its time restarts if the device is silent at opening.
                Incident.device_id.not_in(select(Device.id).where(EXCUSED))
                | Incident.device_id.is_(None),
            )
        ).scalars()
    )
    opened = 0
    for incident in due:
        rule = rules.get(incident.rule_id)
        promoted = db.session.execute(
            update(Incident)
            .where(Incident.id == incident.id, Incident.state == IncidentState.PENDING)
            .values(
                state=IncidentState.OPEN,
                opened_at=now,
                next_reminder_at=now + timedelta(hours=rule.remind_hours)
                if rule and rule.remind_hours
                else None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if not promoted or rule is None:
            continue
        opened += 1
        _fire_promoted(incident, rule, now)
    return opened


def _fire_promoted(incident: Incident, rule: Rule, now: datetime) -> None:
    if rule.per_site:
        _site_fires(incident.id, rule, incident.site, now, incident.quiet)
        return
    site_incident = incidents.firing_site_incidents({incident.site} if incident.site else set())
    if incident.site in site_incident:
        db.session.execute(
            update(Incident)
            .where(Incident.id == incident.id)
            .values(parent_id=site_incident[incident.site])
        )
        incidents.add_members(site_incident[incident.site], [incident.device_id], now)
        return
    incidents.fire(incident.id, rule, now, quiet=incident.quiet)


def _send_reminders(rules: dict[int, Rule], now: datetime) -> int:
    due = list(
        db.session.execute(
            select(Incident).where(
                Incident.next_reminder_at <= now,
                Incident.state == IncidentState.OPEN,
                Incident.parent_id.is_(None),
            )
        ).scalars()
    )
    sent = 0
    for incident in due:
        rule = rules.get(incident.rule_id)
        if rule is None or not rule.remind_hours:
            continue
        moved = db.session.execute(
            update(Incident)
            .where(
                Incident.id == incident.id, Incident.next_reminder_at == incident.next_reminder_at
            )
            .values(next_reminder_at=now + timedelta(hours=rule.remind_hours))
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved and not incident.quiet:
            incidents.announce(incident.id, rule, NotificationKind.REMINDER, now)
            sent += 1
    return sent


def _end_flapping(rules: dict[int, Rule], now: datetime) -> int:
    active = list(
        db.session.execute(
            select(Incident).where(
                Incident.kind == RuleKind.FLAPPING, Incident.state.in_(ACTIVE_STATES)
            )
        ).scalars()
    )
    if not active:
        return 0
    settings = flap_settings()
    counts = dict(
        db.session.execute(
            select(DeviceEvent.device_id, func.count())
            .where(
                DeviceEvent.device_id.in_([i.device_id for i in active]),
                DeviceEvent.kind == "status",
                DeviceEvent.expected_off.is_(None),
                DeviceEvent.created_at >= settings.since(now),
            )
            .group_by(DeviceEvent.device_id)
        ).all()
    )
    ended = 0
    for incident in active:
        if counts.get(incident.device_id, 0) < settings.threshold:
            ended += incidents.resolve(incident.id, rules.get(incident.rule_id), now)
    return ended


def evaluate_in_transaction(events: list[Any]) -> list[Any]:
    """`on_status_events`, kept from ever sinking the status change that called it.

    On PostgreSQL it runs in a savepoint, so a failure rolls back the alerts'
    writes alone; the change and its events still commit, and the error is logged.
    """
    if not any(event.kind in ALERTING_KINDS for event in events):
        return events
    if db.session.get_bind().dialect.name != "postgresql":
        return on_status_events(events)
    try:
        with db.session.begin_nested():
            return on_status_events(events)
    except Exception:
        if current_app.testing:
            raise
        log.exception("alert_evaluation_failed", events=len(events))
        return events
