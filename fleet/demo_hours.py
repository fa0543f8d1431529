"""`make run`'s operating hours: a site that closes for a short "night" a minute or two in.

The server's schedule follows the real clock, so the demo's night is planned on
it: the site closes at the next minute at least a minute away and opens four
minutes later, every day (one span crossing midnight covers the rest of the
day). The simulator switches the site's devices off just after closing and on
just after opening, all but one, which comes back late: staff see "Off hours"
on the grid, then an ordinary outage ("expected at 10:42, silent since 10:38")
that opens an incident and lands in the demo inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fleet.schedules import DAYS

SITE = "Zurich Mall"
NIGHT = timedelta(minutes=4)
# Devices are switched off this long after closing, and back on this long after opening.
SWITCH_OFF_AFTER = 5.0
LATE = 120.0


@dataclass(frozen=True)
class DemoNight:
    closes_at: datetime
    opens_at: datetime

    def schedule(self) -> dict:
        span = [self.opens_at.strftime("%H:%M"), self.closes_at.strftime("%H:%M")]
        return {"timezone": "UTC", "weekly": {day: [span] for day in DAYS}}

    def simulator_arg(self, now: datetime) -> str:
        """--closes-at-night for a simulator started at `now`."""
        closing = max(0.0, (self.closes_at - now).total_seconds()) + SWITCH_OFF_AFTER
        night = NIGHT.total_seconds() - SWITCH_OFF_AFTER + 2
        return f"{SITE}@{closing:.0f}+{night:.0f}+{LATE:.0f}"


def plan(now: datetime) -> DemoNight:
    """Tonight: from the next whole minute at least a minute away, for four minutes."""
    closes_at = (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
    return DemoNight(closes_at, closes_at + NIGHT)


def install(night: DemoNight) -> None:
    """Set the demo site's hours for this run's night."""
    from fleet.services import hours
    from fleet.timeutil import utcnow

    hours.set_site_hours(SITE, night.schedule(), "make run", utcnow())
