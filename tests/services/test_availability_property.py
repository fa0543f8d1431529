"""Property: over random histories, the rollups equal a naive fold of the raw events, to the second.

Histories start mid-day, cross the Europe/Berlin DST changes (UTC buckets must
not care), mix status and expected-off changes, and are written in batches of
several events per transaction as the sweep writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from fleet.extensions import db
from fleet.models import Device, DeviceEvent
from fleet.services import enrolment
from fleet.services.availability import reports
from fleet.services.availability.fold import (
    FOLDED_KINDS,
    HOURS_BACK,
    State,
    change_of,
    clipped,
    initial_status,
    period_start,
    segments,
)
from fleet.services.events import expected_off_event, record_events, status_event
from tests.services.availability_support import (
    device_hours_per_site,
    naive_buckets,
    rounded,
    site_hours,
    stored_buckets,
)

# The nights Europe/Berlin changes its clocks in 2026 (29 March, 25 October), and an ordinary one.
STARTS = [
    datetime(2026, 3, 28, 13, 17, 5, tzinfo=UTC),
    datetime(2026, 10, 24, 22, 41, 30, tzinfo=UTC),
    datetime(2026, 6, 10, 0, 0, 1, tzinfo=UTC),
]
STATUSES = ("connected", "temporarily_offline", "disconnected")
change = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(STATUSES)),
    st.tuples(st.just("expected_off"), st.sampled_from([None, "off_hours", "maintenance"])),
)
history = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=30 * 3600, allow_nan=False).map(lambda s: round(s, 3)),
        change,
        st.integers(min_value=1, max_value=4),
    ),
    max_size=25,
)
uids = count()


def _write(device: Device, steps: list, start: datetime) -> datetime:
    """Write the history in batches; returns the time of its last change."""
    status, clock, batch = "connected", start, []
    for gap, (kind, value), batch_size in steps:
        clock += timedelta(seconds=gap)
        if kind == "status":
            if value == status:
                continue
            batch.append(
                status_event(
                    device.id,
                    device.uid,
                    status,
                    value,
                    reason="t",
                    source="system",
                    now=clock,
                    age=None,
                )
            )
            status = value
        else:
            batch.append(expected_off_event(device.id, device.uid, value, reason="t", now=clock))
        if len(batch) >= batch_size:
            _commit(device, batch, status)
            batch = []
    _commit(device, batch, status)
    return clock


def _commit(device: Device, batch: list, status: str) -> None:
    record_events(batch)
    db.session.execute(update(Device).where(Device.id == device.id).values(status=status))
    db.session.commit()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(start=st.sampled_from(STARTS), steps=history)
def test_rollups_equal_a_naive_fold_of_the_raw_events(app, start, steps):
    uid = f"prop-{next(uids)}"
    enrolment.register_device(uid, start, site=f"Site {len(steps) % 3}")
    device = db.session.execute(db.select(Device).where(Device.uid == uid)).scalar_one()
    last = _write(device, steps, start)

    assert rounded(stored_buckets(device.id, "day")) == rounded(
        naive_buckets(device.id, "day", last)
    )
    # Hours are written from each batch's last change's hour and the 23 before it:
    # every hour a 24 h window read from then on reaches. Compare those hours.
    since = period_start(last, "hour") - HOURS_BACK
    hours = {k: v for k, v in naive_buckets(device.id, "hour", last).items() if k >= since}
    stored = {k: v for k, v in stored_buckets(device.id, "hour").items() if k >= since}
    assert rounded(stored) == rounded(hours)
    # The Sites page's rows hold the same hours, filed under the device's site.
    assert site_hours() == device_hours_per_site()

    # A report ending now is the rollups plus the open segment: the naive fold up to now.
    now = last + timedelta(hours=5)
    window, seconds = reports.device_availability(uid, "90d", now)
    naive = _naive_window(device.id, start, window.start, now)
    assert {k: round(v, 3) for k, v in seconds.as_dict().items()} == {
        k: round(v, 3) for k, v in naive.as_dict().items()
    }


def _naive_window(device_id: int, created: datetime, start: datetime, end: datetime):
    rows = db.session.execute(
        db.select(DeviceEvent)
        .where(DeviceEvent.device_id == device_id, DeviceEvent.kind.in_(FOLDED_KINDS))
        .order_by(DeviceEvent.created_at, DeviceEvent.id)
    ).scalars()
    changes = [change_of(row) for row in rows]
    fold = segments(State(initial_status(changes, "connected")), created, changes, end)
    return clipped(fold.segments, start, end)
