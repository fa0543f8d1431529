"""The simulated fleet: where devices stand, what they are called, and how each one misbehaves."""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

# (site, relative size): a few big sites and a tail of small ones, as real fleets have.
SITES = (
    ("Berlin HQ", 9),
    ("Lyon Station", 7),
    ("Madrid Airport T4", 7),
    ("Amsterdam Centraal", 6),
    ("Milan Fiera", 5),
    ("Vienna Hauptbahnhof", 5),
    ("Zurich Mall", 4),
    ("Prague Old Town", 3),
    ("Copenhagen Harbour", 3),
    ("Dublin Docklands", 2),
    ("Lisbon Oriente", 2),
    ("Warsaw Galeria", 2),
)
KINDS = (
    "Lobby screen",
    "Ticket kiosk",
    "Wayfinding totem",
    "Menu board",
    "Check-in kiosk",
    "Departure board",
    "Info display",
    "Self-checkout",
)
APP_VERSIONS = ("4.2.0", "4.2.1", "4.3.0")
# Fixed, so that every seed and every mix enrols the same devices: a rerun
# reuses them in the database instead of adding a new fleet each time.
LAYOUT_SEED = "pulseboard-fleet-layout"


@dataclass(frozen=True)
class Profile:
    """A device's identity as it enrols."""

    uid: str
    name: str
    site: str


def slug(text: str) -> str:
    """'Berlin HQ' -> 'berlin-hq'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def fleet_layout(count: int) -> list[Profile]:
    """Sites, names and uids for `count` devices: uids like 'sim-berlin-hq-003'.

    The first k devices are the same whatever the count, so a smaller run is a
    subset of a larger one.
    """
    rng = random.Random(LAYOUT_SEED)
    names = [site for site, _ in SITES]
    weights = [weight for _, weight in SITES]
    per_site: Counter[str] = Counter()
    per_kind: Counter[tuple[str, str]] = Counter()
    profiles = []
    for _ in range(count):
        site = rng.choices(names, weights)[0]
        kind = rng.choice(KINDS)
        per_site[site] += 1
        per_kind[site, kind] += 1
        profiles.append(
            Profile(
                uid=f"sim-{slug(site)}-{per_site[site]:03d}",
                name=f"{kind} {per_kind[site, kind]}",
                site=site,
            )
        )
    return profiles


@dataclass(frozen=True)
class Behaviour:
    """How a device misbehaves, in multiples of the heartbeat interval the server gives it.

    Every span is story time, compressed by the time scale, except that an
    outage never lasts less than `min_outage` intervals of real time: the
    server's thresholds run on the wall clock and must notice it at any scale.
    """

    name: str
    pace: float = 1.0  # heartbeat spacing
    up: tuple[float, float] | None = None  # time between incidents
    outage: tuple[float, float] | None = None
    min_outage: float = 0.0
    dies: bool = False


BEHAVIOURS = {
    behaviour.name: behaviour
    for behaviour in (
        Behaviour("steady"),
        # Past I + G (with G = I, as by default) but short of D: temporarily
        # offline, then back, again and again, so it flaps.
        Behaviour("flaky", up=(1, 4), outage=(2.5, 4), min_outage=2.5),
        Behaviour("dying", up=(1, 6), dies=True),
        # Silent for minutes at the default interval: temporarily offline, often
        # disconnected, then back.
        Behaviour("intermittent", up=(3, 10), outage=(3, 15), min_outage=3),
        # Beats four times per interval: faster than the rate limit allows.
        Behaviour("too_fast", pace=0.25),
    )
}
DEFAULT_MIX = "steady=70,flaky=10,dying=5,intermittent=10,too_fast=5"


class MixError(ValueError):
    """A behaviour mix that cannot be read."""


def parse_mix(text: str) -> dict[str, float]:
    """'steady=70,flaky=10' -> {'steady': 70.0, 'flaky': 10.0}; unnamed behaviours get 0."""
    mix: dict[str, float] = {}
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, sep, weight = part.partition("=")
        name = name.strip()
        if not sep or name not in BEHAVIOURS:
            known = ", ".join(BEHAVIOURS)
            raise MixError(f"expected name=weight with a name among {known}, got {part!r}")
        try:
            mix[name] = float(weight)
        except ValueError:
            raise MixError(f"the weight of {name} must be a number, got {weight!r}") from None
        if mix[name] < 0:
            raise MixError(f"the weight of {name} must not be negative")
    if sum(mix.values()) <= 0:
        raise MixError("the mix must give at least one behaviour a positive weight")
    return mix


def assign_behaviours(count: int, mix: dict[str, float], rng: random.Random) -> list[str]:
    """Exactly the mix's shares of `count` (largest remainder), in a seeded random order."""
    total = sum(mix.values())
    quotas = {name: count * weight / total for name, weight in mix.items()}
    counts = {name: int(quota) for name, quota in quotas.items()}
    by_remainder = sorted(quotas, key=lambda name: quotas[name] - counts[name], reverse=True)
    for name in by_remainder[: count - sum(counts.values())]:
        counts[name] += 1
    names = [name for name, number in counts.items() for _ in range(number)]
    rng.shuffle(names)
    return names
