"""A fleet simulator: enrols N devices and runs them with a mix of behaviours, over HTTP only.

    python -m clients.simulator --devices 200 --time-scale 2 --server http://127.0.0.1:5000

Behaviours: steady; flaky (drops out past the grace period now and then, so it
flaps); dying (goes silent for good); intermittent (silent for minutes, then
back); too_fast (beats faster than the rate limit and honours Retry-After).
Every device honours `should_reconnect`: it waits the delay, then re-registers
or resumes. The time scale compresses everything (heartbeat spacing, time
between incidents, outages), except that an outage never gets shorter than the
server's wall-clock thresholds need to notice it.

One scheduler thread keeps a heap of next-due times and hands due devices to a
small thread pool, so 200 devices need a handful of threads, not 200.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import logging
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from clients.sim_device import EnrolmentRefused, Journal, SimDevice
from clients.sim_fleet import (
    BEHAVIOURS,
    DEFAULT_MIX,
    MixError,
    assign_behaviours,
    fleet_layout,
    parse_mix,
)
from clients.sim_http import DeviceApi

log = logging.getLogger("pulseboard.simulator")

IDLE_WAIT = 0.25  # the scheduler re-checks the stop flag at least this often


@dataclass(frozen=True)
class Settings:
    """What to simulate, from flags and the environment."""

    server: str = "http://127.0.0.1:5000"
    enrollment_key: str = "dev-enrollment-key"
    devices: int = 50
    mix: dict[str, float] = field(default_factory=lambda: parse_mix(DEFAULT_MIX))
    time_scale: float = 1.0
    seed: int = 0
    duration: float | None = None
    workers: int = 8
    report_every: float = 30.0
    log_level: str = "INFO"
    # (site, start, length) in seconds of real time from the run's start: every device
    # of the site goes silent at once, as in a power cut, then comes back.
    site_outage: tuple[str, float, float] | None = None
    # (site, closing, night length, late) in seconds of real time from the run's start:
    # the site's devices are switched off at closing and on again after the night;
    # its first device comes back `late` seconds after the others (an outage at opening).
    closes_at_night: tuple[str, float, float, float] | None = None


def build_fleet(settings: Settings, journal: Journal) -> list[SimDevice]:
    """The devices of the run: a fixed layout, behaviours shuffled by the seed."""
    profiles = fleet_layout(settings.devices)
    behaviours = assign_behaviours(
        settings.devices, settings.mix, random.Random(f"{settings.seed}:mix")
    )
    return [
        SimDevice(profile, BEHAVIOURS[name], settings.seed, settings.time_scale, journal)
        for profile, name in zip(profiles, behaviours, strict=True)
    ]


class Simulator:
    """Runs a fleet until stopped, its duration is over, or the server refuses enrolment."""

    def __init__(
        self,
        settings: Settings,
        api: DeviceApi | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.api = api or DeviceApi(settings.server, settings.enrollment_key)
        self.clock = clock
        self.journal = Journal()
        self.devices = build_fleet(settings, self.journal)
        self.fatal: str | None = None
        self._stopping = threading.Event()
        self._heap: list[tuple[float, int, SimDevice]] = []
        self._ticket = itertools.count()
        self._ready = threading.Condition()

    def _stage_site_outage(self, start: float) -> None:
        if self.settings.site_outage is None:
            return
        site, begins, length = self.settings.site_outage
        for device in self.devices:
            if device.profile.site == site:
                device.blackout = (start + begins, start + begins + length)
        log.info("staging a site outage at %s: silent from %g s for %g s", site, begins, length)

    def _stage_night(self, start: float) -> None:
        if self.settings.closes_at_night is None:
            return
        site, closing, length, late = self.settings.closes_at_night
        devices = [device for device in self.devices if device.profile.site == site]
        for index, device in enumerate(devices):
            back = closing + length + (late if index == 0 else device.rng.uniform(1, 6))
            device.night = (start + closing, start + back)
        log.info(
            "%s closes %g s into the run for %g s (%d devices)", site, closing, length, len(devices)
        )

    def stop(self) -> None:
        """Ask the run to end; safe from a signal handler (it only sets a flag)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> int:
        """Run the fleet; the exit code: 0 after a clean stop, 2 if enrolment was refused."""
        start = self.clock()
        deadline = math.inf if self.settings.duration is None else start + self.settings.duration
        # Enrolments spread over up to two seconds rather than arriving as one burst.
        spread = min(2.0, 0.01 * len(self.devices))
        for device in self.devices:
            self._schedule(device, start + device.rng.uniform(0, spread))
        self._stage_site_outage(start)
        self._stage_night(start)
        log.info(
            "simulating %d devices against %s (time scale %g, seed %d)",
            len(self.devices),
            self.settings.server,
            self.settings.time_scale,
            self.settings.seed,
        )
        with ThreadPoolExecutor(self.settings.workers, thread_name_prefix="sim") as pool:
            self._loop(pool, deadline)
            self._stopping.set()
            pool.shutdown(wait=True, cancel_futures=True)
        if self.fatal:
            log.error("stopping: %s", self.fatal)
            return 2
        log.info("stopped: %s", self.summary())
        return 0

    def _loop(self, pool: ThreadPoolExecutor, deadline: float) -> None:
        next_report = self.clock() + self.settings.report_every
        while not self.stopping:
            now = self.clock()
            if now >= deadline:
                return
            for device in self._pop_due(now):
                pool.submit(self._step, device)
            if now >= next_report:
                log.info("%s", self.summary())
                next_report = now + self.settings.report_every
            with self._ready:
                due = self._heap[0][0] if self._heap else math.inf
                self._ready.wait(max(0.0, min(due - now, deadline - now, IDLE_WAIT)))

    def _schedule(self, device: SimDevice, due: float) -> None:
        with self._ready:
            heapq.heappush(self._heap, (due, next(self._ticket), device))
            self._ready.notify()

    def _pop_due(self, now: float) -> list[SimDevice]:
        due = []
        with self._ready:
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap)[2])
        return due

    def _step(self, device: SimDevice) -> None:
        """One device's step on a pool thread; a device is never stepped twice at once."""
        if self.stopping:
            return
        try:
            wait = device.step(self.api, self.clock())
        except EnrolmentRefused as error:
            self.fatal = str(error)
            self.stop()
            return
        except Exception:  # one broken device must not end the run
            log.exception("%s: unexpected error; retrying later", device.uid)
            wait = 5.0
        if wait is not None:
            self._schedule(device, self.clock() + wait)

    def summary(self) -> str:
        """One line: devices by state and what they have done so far."""
        states = {"up": 0, "quiet": 0, "dead": 0, "enrolling": 0}
        for device in self.devices:
            states[device.state] += 1
        counts = self.journal.counts
        return (
            f"{len(self.devices)} devices: {states['up']} up, {states['quiet']} quiet, "
            f"{states['dead']} dead, {states['enrolling']} enrolling | "
            f"{counts['heartbeats']} heartbeats, {counts['rate_limited']} rate-limited, "
            f"{counts['outages']} outages, {counts['reconnects']} reconnects, "
            f"{counts['unreachable']} unreachable"
        )


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> Settings:
    """Settings from flags, falling back to SIM_* variables (and ENROLLMENT_KEY)."""
    parser = argparse.ArgumentParser(
        prog="python -m clients.simulator",
        description="Simulate a fleet of kiosks talking to a Pulseboard server.",
    )
    default = Settings()
    parser.add_argument("--server", default=env.get("SIM_SERVER", default.server))
    parser.add_argument(
        "--enrollment-key", default=env.get("ENROLLMENT_KEY", default.enrollment_key)
    )
    parser.add_argument("--devices", type=int, default=int(env.get("SIM_DEVICES", 50)))
    parser.add_argument("--mix", default=env.get("SIM_MIX", DEFAULT_MIX), help=DEFAULT_MIX)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=float(env.get("SIM_TIME_SCALE", 1)),
        help="run the devices' story this many times faster (heartbeats, incidents)",
    )
    parser.add_argument(
        "--seed", type=int, default=int(env.get("SIM_SEED", random.randrange(10**6)))
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=float(env["SIM_DURATION"]) if env.get("SIM_DURATION") else None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    parser.add_argument("--workers", type=int, default=int(env.get("SIM_WORKERS", 8)))
    parser.add_argument("--report-every", type=float, default=30.0)
    parser.add_argument("--log-level", default=env.get("SIM_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--site-outage",
        default=env.get("SIM_SITE_OUTAGE"),
        metavar="SITE@START+LENGTH",
        help="every device of SITE goes silent START s into the run, for LENGTH s",
    )
    parser.add_argument(
        "--closes-at-night",
        default=env.get("SIM_CLOSES_AT_NIGHT"),
        metavar="SITE@CLOSING+NIGHT[+LATE]",
        help="SITE's devices switch off CLOSING s into the run for NIGHT s; "
        "its first device comes back LATE s (default 180) after the others",
    )
    args = parser.parse_args(argv)
    if args.devices < 1 or args.workers < 1 or args.time_scale <= 0:
        parser.error("--devices and --workers must be at least 1, --time-scale above 0")
    try:
        mix = parse_mix(args.mix)
    except MixError as error:
        parser.error(f"--mix: {error}")
    outage = None
    if args.site_outage:
        try:
            outage = parse_site_outage(args.site_outage)
        except ValueError as error:
            parser.error(f"--site-outage: {error}")
    night = None
    if args.closes_at_night:
        try:
            night = parse_closes_at_night(args.closes_at_night)
        except ValueError as error:
            parser.error(f"--closes-at-night: {error}")
    return Settings(
        closes_at_night=night,
        server=args.server,
        enrollment_key=args.enrollment_key,
        devices=args.devices,
        mix=mix,
        time_scale=args.time_scale,
        seed=args.seed,
        duration=args.duration,
        workers=args.workers,
        report_every=args.report_every,
        log_level=args.log_level.upper(),
        site_outage=outage,
    )


def parse_site_outage(text: str) -> tuple[str, float, float]:
    """'Dublin Docklands@45+90' -> ('Dublin Docklands', 45.0, 90.0)."""
    site, at, timing = text.rpartition("@")
    begins, plus, length = timing.partition("+")
    try:
        start, span = float(begins), float(length)
    except ValueError:
        raise ValueError(f"expected SITE@START+LENGTH in seconds, got {text!r}") from None
    if not at or not site.strip() or not plus or start < 0 or span <= 0:
        raise ValueError(f"expected SITE@START+LENGTH in seconds, got {text!r}")
    return site.strip(), start, span


def parse_closes_at_night(text: str) -> tuple[str, float, float, float]:
    """'Zurich Mall@120+240+180' -> ('Zurich Mall', 120.0, 240.0, 180.0); LATE defaults to 180."""
    site, at, timing = text.rpartition("@")
    parts = timing.split("+")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise ValueError(f"expected SITE@CLOSING+NIGHT[+LATE] in seconds, got {text!r}") from None
    if not at or not site.strip() or len(numbers) not in (2, 3) or min(numbers) < 0:
        raise ValueError(f"expected SITE@CLOSING+NIGHT[+LATE] in seconds, got {text!r}")
    closing, night, late = (*numbers, 180.0) if len(numbers) == 2 else numbers
    return site.strip(), closing, night, late


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until Ctrl-C or SIGTERM, then stop cleanly."""
    settings = parse_args(argv, os.environ)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    simulator = Simulator(settings)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: simulator.stop())
    return simulator.run()


if __name__ == "__main__":
    sys.exit(main())
