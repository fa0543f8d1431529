"""One simulated device: a small state machine driven by the simulator's scheduler.

`step(api, now)` does whatever is due at `now` (enrol, heartbeat, start or end
an outage, reconnect, carry out a command, upload a screenshot) with at most
one HTTP request, and returns how many seconds until its next step, or None
once the device has died.

Commands come in heartbeat replies (`commands`); each is carried out after its
`delay_seconds` and acknowledged in the next heartbeat (`acks`): a restart
resets the uptime, a reboot goes silent for a while and then resumes or
enrols again, a screenshot uploads a small generated PNG.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from clients.images import tiny_png
from clients.sim_fleet import APP_VERSIONS, Behaviour, Profile
from clients.sim_http import DeviceApi, Reply

DEFAULT_INTERVAL = 30.0  # until the server says otherwise
BACKOFF_BASE = 0.5
BACKOFF_CAP = 15.0
REBOOT_SECONDS = (3.0, 8.0)  # real seconds a simulated reboot stays silent

log = logging.getLogger("pulseboard.simulator")


class EnrolmentRefused(RuntimeError):
    """The server refused to enrol a device: a wrong key or a bad request. Fatal for the run."""


@dataclass(frozen=True)
class Step:
    """One thing a device did, kept for the run summary and for tests."""

    at: float
    action: str
    status: int | None = None
    wait: float | None = None
    retry_after: float | None = None


class Journal:
    """Counts what the fleet did and logs it; tells once when the server goes away or returns."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server_down = False

    def note(self, what: str, message: str | None = None, *args: Any) -> None:
        """Count one occurrence of `what`; log `message` at INFO when given."""
        with self._lock:
            self.counts[what] += 1
        if message:
            log.info(message, *args)

    def server_unreachable(self, reply: Reply) -> None:
        with self._lock:
            first, self._server_down = not self._server_down, True
            self.counts["unreachable"] += 1
        if first:
            detail = reply.error_message or f"HTTP {reply.status}"
            log.warning("server unavailable (%s); devices retry with back-off", detail)

    def server_reachable(self) -> None:
        with self._lock:
            returned, self._server_down = self._server_down, False
        if returned:
            log.warning("server reachable again")


class SimDevice:
    """A kiosk with a behaviour; every random choice comes from its own seeded generator."""

    def __init__(
        self,
        profile: Profile,
        behaviour: Behaviour,
        seed: int,
        time_scale: float,
        journal: Journal,
    ) -> None:
        self.profile = profile
        self.behaviour = behaviour
        self.time_scale = time_scale
        self.journal = journal
        self.rng = random.Random(f"{seed}:{profile.uid}")
        self.reconnect_by = self.rng.choice(("register", "resume"))
        self.token: str | None = None
        self.proof: str | None = None  # the token to show when enrolling again
        self.interval = DEFAULT_INTERVAL
        self.failures = 0
        self.quiet_until: float | None = None  # math.inf once dead
        self.quiet_since = 0.0
        self.next_incident: float | None = None
        self.reconnect_due: float | None = None
        self.reconnecting: str | None = None  # how a collected reconnect is being carried out
        self.booted_at: float | None = None
        self.battery = self.rng.uniform(40, 100) if self.rng.random() < 0.4 else None
        self.wifi = self.rng.uniform(-75, -45)
        self.app_version = self.rng.choice(APP_VERSIONS)
        self.history: deque[Step] = deque(maxlen=200)
        # A staged site outage (the simulator's --site-outage): silent from, until.
        self.blackout: tuple[float, float] | None = None
        # A site that closes at night (the simulator's --closes-at-night): switched off
        # at closing, on again after opening; silent from, until.
        self.night: tuple[float, float] | None = None
        self.due_commands: list[tuple[float, dict[str, Any]]] = []  # (when, command)
        self.uploads: list[int] = []  # screenshot commands whose image is still to send
        self.acks: list[dict[str, Any]] = []  # results for the next heartbeat

    @property
    def uid(self) -> str:
        return self.profile.uid

    @property
    def state(self) -> str:
        """'enrolling', 'up', 'quiet' or 'dead', for the run summary."""
        if self.quiet_until == math.inf:
            return "dead"
        if self.quiet_until is not None:
            return "quiet"
        return "enrolling" if self.token is None else "up"

    def step(self, api: DeviceApi, now: float) -> float | None:
        """Do what is due at `now`; the seconds until the next step, or None once dead."""
        if self.night is not None and self.night[0] <= now < self.night[1]:
            if not self.history or self.history[-1].action != "night":
                self.journal.note("nights", "%s switched off: its site closed", self.uid)
            self._record(now, "night", None, self.night[1] - now)
            return self.night[1] - now
        if self.blackout is not None and self.blackout[0] <= now < self.blackout[1]:
            if not self.history or self.history[-1].action != "blackout":
                self.journal.note("blackouts", "%s silent: its site lost power", self.uid)
            self._record(now, "blackout", None, self.blackout[1] - now)
            return self.blackout[1] - now
        if self.quiet_until is not None:
            if now < self.quiet_until:
                return None if self.quiet_until == math.inf else self.quiet_until - now
            self._end_outage(now)
        wait = self._carry_out_due(now)
        if wait is not None:
            return wait
        if self.uploads and self.token is not None:
            return self._upload(api, now)
        if self.reconnect_due is not None and now >= self.reconnect_due:
            self.reconnect_due = None
            self.reconnecting = self.reconnect_by
            if self.reconnect_by == "register":
                # Kept to prove who we are when we enrol again.
                self.proof, self.token = self.token, None
        if self.token is None:
            return self._register(api, now)
        if self.next_incident is not None and now >= self.next_incident:
            return self._start_outage(now)
        return self._heartbeat(api, now)

    # --- pacing -----------------------------------------------------------------

    def _story(self, intervals: float) -> float:
        """Story time (between incidents, between heartbeats) runs faster by the time scale."""
        return intervals * self.interval / self.time_scale

    def _beat_wait(self) -> float:
        return self._story(self.behaviour.pace) * self.rng.uniform(0.9, 1.1)

    def _backoff(self) -> float:
        self.failures += 1
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (self.failures - 1))
        return ceiling * self.rng.uniform(0.5, 1.0)

    def _plan_incident(self, now: float) -> None:
        up = self.behaviour.up
        self.next_incident = None if up is None else now + self._story(self.rng.uniform(*up))

    def _record(self, now: float, action: str, reply: Reply | None, wait: float | None) -> float:
        status = None if reply is None else reply.status
        retry_after = None if reply is None else reply.retry_after
        self.history.append(Step(now, action, status, wait, retry_after))
        return wait if wait is not None else 0.0

    # --- actions ----------------------------------------------------------------

    def _register(self, api: DeviceApi, now: float) -> float:
        profile = {
            "uid": self.uid,
            "name": self.profile.name,
            "site": self.profile.site,
            "app_version": self.app_version,
        }
        reply = api.register(profile, self.proof)
        if reply.status == 201:
            self.proof = None
            return self._record(now, "register", reply, self._enrolled(reply, now))
        if reply.status == 409:
            # Known to the server, and our token is gone: only an operator's
            # leave (flask devices allow-re-enrolment) lets us in; ask again later.
            self.journal.note(
                "needs_leave", "%s: enrolled already; waiting for an operator's leave", self.uid
            )
            return self._record(now, "register", reply, self._backoff())
        if reply.status == 429:
            return self._record(now, "register", reply, self._rate_limited(reply))
        if not reply.reachable:
            self.journal.server_unreachable(reply)
            return self._record(now, "register", reply, self._backoff())
        raise EnrolmentRefused(
            f"the server refused to enrol {self.uid} (HTTP {reply.status}): {reply.error_message}"
        )

    def _enrolled(self, reply: Reply, now: float) -> float:
        self.journal.server_reachable()
        first = self.booted_at is None
        self.token = reply.body["token"]
        self.interval = float(reply.body.get("heartbeat_interval_seconds") or self.interval)
        self.failures = 0
        self.booted_at = now
        if first:
            self.journal.note("enrolled")
            self._plan_incident(now)
            # Spread the first heartbeats over one interval so the fleet is not in lockstep.
            return self._beat_wait() * self.rng.uniform(0.1, 1.0)
        if self.reconnecting == "register":
            self.reconnecting = None
            self.journal.note("re_registered", "%s reconnected by re-registering", self.uid)
        else:
            self.journal.note("re_enrolled", "%s enrolled again", self.uid)
        return self._beat_wait()

    def _heartbeat(self, api: DeviceApi, now: float) -> float:
        assert self.token is not None
        body = self._telemetry(now)
        sent, self.acks = self.acks, []
        if sent:
            body["acks"] = sent
        reply = api.heartbeat(self.token, body)
        if reply.status != 200 and reply.status != 422:
            # Not heard: the results go again with the next heartbeat. A 422
            # refused them for good (a command this device was never given).
            self.acks = sent + self.acks
        if reply.status == 200:
            return self._record(now, "heartbeat", reply, self._accepted(reply, now))
        if reply.status == 429:
            return self._record(now, "heartbeat", reply, self._rate_limited(reply))
        if reply.status == 401:
            # Our token was rotated or the server's database was reset: enrol again.
            self.journal.note("token_refused", "%s: token refused; enrolling again", self.uid)
            self.token = self.proof = None
            return self._record(now, "heartbeat", reply, self._backoff())
        if not reply.reachable:
            self.journal.server_unreachable(reply)
            return self._record(now, "heartbeat", reply, self._backoff())
        self.journal.note(
            "rejected",
            "%s: heartbeat rejected (HTTP %s): %s",
            self.uid,
            reply.status,
            reply.error_message,
        )
        return self._record(now, "heartbeat", reply, self._beat_wait())

    def _accepted(self, reply: Reply, now: float) -> float:
        self.journal.server_reachable()
        self.failures = 0
        self.interval = float(reply.body.get("heartbeat_interval_seconds") or self.interval)
        self.journal.note("heartbeats")
        if self.reconnecting == "resume":
            self.reconnecting = None
            self.journal.note("resumed", "%s resumed after the reconnect", self.uid)
        for command in reply.body.get("commands") or ():
            self._collect(command, now)
        if not reply.body.get("should_reconnect"):
            return self._next_wait(now)
        # The delay is the server's instruction, in real seconds: never scaled.
        delay = float(reply.body.get("reconnect_delay_seconds") or 0)
        self.reconnect_due = now + delay
        how = "re-registering" if self.reconnect_by == "register" else "resuming"
        self.journal.note("reconnects", "%s asked to reconnect: %s in %.0fs", self.uid, how, delay)
        self.history.append(Step(now, "reconnect_requested", reply.status, delay))
        return delay

    # --- commands -----------------------------------------------------------------

    def _collect(self, command: dict[str, Any], now: float) -> None:
        """Note a command from a reply; reconnect is carried out through should_reconnect."""
        self.journal.note("commands", "%s got %s", self.uid, command.get("kind"))
        if command.get("kind") == "reconnect":
            self.acks.append({"id": command["id"], "result": "ok"})
            return
        # The delay is the server's instruction, in real seconds: never scaled.
        delay = float((command.get("params") or {}).get("delay_seconds") or 0)
        self.due_commands.append((now + delay, command))

    def _next_wait(self, now: float) -> float:
        wait = self._beat_wait()
        if self.uploads or self.acks:
            wait = min(wait, 0.05)
        if self.due_commands:
            wait = min(wait, max(0.0, min(due for due, _ in self.due_commands) - now))
        return wait

    def _carry_out_due(self, now: float) -> float | None:
        """Carry out the commands now due; a wait if one of them silenced the device."""
        due = [command for when, command in self.due_commands if when <= now]
        self.due_commands = [(w, c) for w, c in self.due_commands if w > now]
        wait = None
        for command in due:
            kind, command_id = command.get("kind"), command["id"]
            self.history.append(Step(now, f"command:{kind}"))
            if kind == "screenshot":
                self.uploads.append(command_id)
                continue
            if kind == "reboot":
                wait = self._reboot(now)
            elif kind == "restart_app":
                self.booted_at = now
            self.acks.append({"id": command_id, "result": "ok", "message": f"{kind} done"})
        return wait

    def _reboot(self, now: float) -> float:
        """Silent for a while; then, as after a reconnect, resume or enrol again."""
        length = self.rng.uniform(*REBOOT_SECONDS)
        self.quiet_since, self.quiet_until = now, now + length
        self.booted_at = now + length
        if self.reconnect_by == "register":
            self.proof, self.token = self.token or self.proof, None
        self.journal.note("reboots", "%s rebooting for %.0fs", self.uid, length)
        return self._record(now, "reboot", None, length)

    def _upload(self, api: DeviceApi, now: float) -> float:
        assert self.token is not None
        command_id = self.uploads.pop(0)
        reply = api.screenshot(self.token, tiny_png(), command_id)
        if reply.status == 201:
            self.acks.append({"id": command_id, "result": "ok"})
            self.journal.note("screenshots")
        elif reply.reachable and reply.status != 429:
            message = f"upload refused: HTTP {reply.status}"
            self.acks.append({"id": command_id, "result": "failed", "message": message})
        else:
            self.uploads.insert(0, command_id)  # the server is away: try again
            return self._record(now, "screenshot", reply, self._backoff())
        return self._record(now, "screenshot", reply, 0.05)

    def _rate_limited(self, reply: Reply) -> float:
        self.journal.note("rate_limited")
        # Retry-After is the server's instruction, in real seconds: never scaled. It
        # has whole-second resolution, so a truncated "0" still means "not yet".
        retry_after = reply.retry_after if reply.retry_after is not None else self.interval
        return max(1.0, retry_after) + 0.05

    def _start_outage(self, now: float) -> float | None:
        self.next_incident = None
        self.quiet_since = now
        if self.behaviour.dies:
            self.quiet_until = math.inf
            self.journal.note("deaths", "%s went silent for good (%s)", self.uid, "dying")
            self._record(now, "died", None, None)
            return None
        assert self.behaviour.outage is not None
        length = max(
            self._story(self.rng.uniform(*self.behaviour.outage)),
            self.behaviour.min_outage * self.interval,
        )
        self.quiet_until = now + length
        self.journal.note(
            "outages",
            "%s (%s) dropped off the network for %.0fs",
            self.uid,
            self.behaviour.name,
            length,
        )
        return self._record(now, "outage", None, length)

    def _end_outage(self, now: float) -> None:
        self.quiet_until = None
        self.journal.note("returns", "%s is back after %.0fs", self.uid, now - self.quiet_since)
        self._plan_incident(now)

    def _telemetry(self, now: float) -> dict[str, Any]:
        """Readings that drift a little between heartbeats."""
        self.wifi = min(-35.0, max(-95.0, self.wifi + self.rng.uniform(-3, 3)))
        telemetry: dict[str, Any] = {
            "wifi_strength": round(self.wifi),
            "app_version": self.app_version,
            "uptime_seconds": int(now - (self.booted_at or now)),
        }
        if self.battery is not None:
            drain = 3.0 if self.behaviour.dies else 0.3
            self.battery = min(100.0, max(0.0, self.battery + self.rng.uniform(-drain, 0.2)))
            telemetry["battery_level"] = round(self.battery, 1)
        return telemetry
