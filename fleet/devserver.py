"""`make run`: migrate, create the demo admin, serve, and (unless DEMO=0) run a simulated fleet.

    python -m fleet.devserver

With the demo (the default) the server runs with short thresholds and a fast
sweep, and the simulator enrols about 200 devices, so that every status tier,
flapping devices and collected reconnects show within two minutes. DEMO=0
serves with the normal thresholds and no simulator, for your own devices.
Variables already in the environment win over the demo's values.

Each child runs in its own process group (and, on Linux, dies with this
process), so Ctrl-C or SIGTERM here stops everything and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import Field

from fleet import ROOT, demo_alerts, demo_hours
from fleet.config import EnvironmentSettings

# Short enough that a newcomer sees every tier within two minutes: offline
# after 20 s of silence, disconnected after 60 s, swept every 5 s.
DEMO_SERVER_ENV = {
    "HEARTBEAT_INTERVAL_SECONDS": "10",
    "GRACE_PERIOD_SECONDS": "10",
    "DISCONNECT_AFTER_SECONDS": "60",
    "SWEEP_INTERVAL_SECONDS": "5",
    "FLAP_WINDOW_SECONDS": "600",
    # The simulator beats every 10 s / time scale; its too-fast devices beat
    # four times as often, which this limit catches.
    "HEARTBEAT_MIN_INTERVAL_SECONDS": "2",
    "HEARTBEAT_MAX_PER_MINUTE": "40",
    # The whole simulated fleet enrols from this one address within seconds.
    "ENROLL_MAX_PER_MINUTE": "2000",
    "RECONNECT_DELAY_SECONDS": "3",
    "BULK_RECONNECT_SPREAD_SECONDS": "20",
    "TELEMETRY_SAMPLE_SECONDS": "30",
    "EMBEDDED_SWEEPER": "1",
    # The demo's alert channel is a receiver on this machine (fleet/demo_alerts.py).
    "ALERT_ALLOW_PRIVATE_TARGETS": "true",
}
STOP_TIMEOUT = 10.0
READY_TIMEOUT = 60.0


class RunSettings(EnvironmentSettings):
    """What `make run` does: DEMO, HOST, PORT, DEMO_ADMIN_*, SIM_* and RUN_LOG_DIR."""

    demo: bool = True
    host: str = "127.0.0.1"
    port: int = Field(5000, ge=1)
    admin_email: str = Field("admin@example.com", validation_alias="DEMO_ADMIN_EMAIL")
    admin_password: str = Field("pulseboard", validation_alias="DEMO_ADMIN_PASSWORD", repr=False)
    devices: int = Field(200, ge=1, validation_alias="SIM_DEVICES")
    time_scale: str = Field("2", validation_alias="SIM_TIME_SCALE")
    # Fixed, so a second run replays the same fleet on the same devices.
    seed: str = Field("1", validation_alias="SIM_SEED")
    log_dir: Path = Field(ROOT / "instance", validation_alias="RUN_LOG_DIR")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def run_settings(env: Mapping[str, str]) -> RunSettings:
    """`make run`'s settings from `env`; raises ConfigError naming a bad variable."""
    return RunSettings.read(env)


def child_env(settings: RunSettings, env: Mapping[str, str]) -> dict[str, str]:
    """The environment for the server and the commands: the demo's values unless set already."""
    merged = dict(env)
    merged["FLASK_APP"] = "wsgi"
    merged.setdefault("PYTHONUNBUFFERED", "1")
    merged.setdefault("ALERT_DASHBOARD_URL", settings.url)
    if settings.demo:
        for name, value in DEMO_SERVER_ENV.items():
            merged.setdefault(name, value)
    return merged


def _die_with_parent() -> None:
    """In the child, before exec: be killed if the launcher dies without cleaning up (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_child(
    command: list[str], env: Mapping[str, str], log: IO[bytes] | None
) -> subprocess.Popen:
    """Start a child in its own process group, so we stop it (and its children) as one."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def stop_child(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it does not stop in time."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", *args]


def prepare(
    settings: RunSettings,
    env: Mapping[str, str],
    inbox_url: str | None = None,
    night: demo_hours.DemoNight | None = None,
) -> str:
    """Migrate the database and create the demo admin; a line saying what happened to the admin.

    With the demo's inbox, its channel and rules are set up too.

    Both run in this process, on one app, because starting the app costs seconds
    and `make run` should be quick to come up.
    """
    from fleet import create_app
    from fleet.extensions import db
    from fleet.schema import upgrade

    app = create_app(env={**env, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade()
        # The CLI runner invokes `flask users create` in-process and captures its output.
        result = app.test_cli_runner().invoke(
            args=["users", "create", settings.admin_email, "--role", "admin",
                  "--password", settings.admin_password],
        )  # fmt: skip
        if inbox_url:
            from fleet import demo_alerts

            demo_alerts.install(inbox_url)
        if night:
            demo_hours.install(night)
        db.engine.dispose()
    return admin_outcome(settings.admin_email, result.exit_code, result.output)


def admin_outcome(email: str, exit_code: int, output: str) -> str:
    """Say what `flask users create` did; an admin that already exists is fine."""
    if exit_code == 0:
        return f"created the admin {email}"
    lowered = output.lower()
    if "exist" in lowered:
        return f"the admin {email} already exists"
    if "no such command" in lowered:
        return "this version has no `flask users` command yet; no admin created"
    last = output.strip().splitlines()[-1] if output.strip() else f"exit code {exit_code}"
    return f"could not create the admin {email}: {last}"


def wait_until_serving(url: str, server: subprocess.Popen, timeout: float = READY_TIMEOUT) -> bool:
    """True once the server answers HTTP (any status); False if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            # Any request also starts the embedded sweeper, which waits for the first one.
            urllib.request.urlopen(url + "/", timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for a child that died."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def say(message: str) -> None:
    print(message, flush=True)


def banner(settings: RunSettings, admin: str, night: demo_hours.DemoNight | None = None) -> str:
    """What a newcomer needs: the URL, the login and how to stop."""
    lines = [
        f"Pulseboard is running at {settings.url}",
        # The password is shown only when this run set it; an existing admin keeps theirs.
        f"  log in as {settings.admin_email} / "
        + (settings.admin_password if admin.startswith("created") else "(its existing password)")
        + f"  ({admin})",
    ]
    if settings.demo:
        lines += [
            f"  demo fleet: {settings.devices} simulated devices (time scale "
            f"{settings.time_scale}); every tier and flapping show within two minutes",
            f"  logs: {settings.log_dir / 'server.log'}, {settings.log_dir / 'simulator.log'}",
            f"  alerts: messages land in {settings.log_dir / 'alerts-inbox.log'} (channel "
            f"demo-inbox); a power cut at {demo_alerts.SITE_OUTAGE.split('@')[0]} is staged "
            "45 s in, and lasts 90 s",
        ]
    if night:
        lines.append(
            f"  hours: {demo_hours.SITE} closes at {night.closes_at:%H:%M} UTC and opens at "
            f"{night.opens_at:%H:%M} (its devices show Off hours; one comes back late)"
        )
    if not settings.demo:
        lines.append("  no demo fleet (DEMO=0): point your devices at the URL above")
    lines.append("  Ctrl-C stops everything.")
    return "\n".join(lines)


def start_logged(command: list[str], env: Mapping[str, str], log: Path | None) -> subprocess.Popen:
    """Start a child writing to `log` (appended), or to this terminal when `log` is None."""
    if log is None:
        return start_child(command, env, None)
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return start_child(command, env, handle)


def serve(settings: RunSettings, env: Mapping[str, str], children: list[subprocess.Popen]) -> int:
    """Start the server (and the simulator) and watch them until one exits or we are stopped."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    say("Pulseboard: migrating the database and creating the demo admin ...")
    inbox = night = None
    if settings.demo:
        inbox = demo_alerts.DemoInbox(settings.log_dir / "alerts-inbox.log").start()
        night = demo_hours.plan(datetime.now(UTC))
    admin = prepare(settings, env, inbox.url if inbox else None, night)
    server_log = settings.log_dir / "server.log"
    server_command = flask_command(
        "run", "--host", settings.host, "--port", str(settings.port), "--no-reload"
    )
    # Without the demo the server's log is the interesting output: it stays on the terminal.
    children.append(start_logged(server_command, env, server_log if settings.demo else None))
    logs = {children[-1].pid: server_log}
    if not wait_until_serving(settings.url, children[0]):
        say(f"the server did not start on {settings.url}:\n{tail(server_log)}")
        return 1
    if settings.demo:
        simulator_log = settings.log_dir / "simulator.log"
        command = simulator_command(settings, night)
        children.append(start_logged(command, env, simulator_log))
        logs[children[-1].pid] = simulator_log
        backfill_history(env, settings.log_dir / "demo-history.log")
    say(banner(settings, admin, night))
    return watch(children, logs)


def watch(children: list[subprocess.Popen], logs: Mapping[int, Path]) -> int:
    """Wait until a child exits on its own: that is a failure, reported with its log."""
    while True:
        for child in children:
            if child.poll() is not None:
                say(f"{child.args[2]} exited (code {child.returncode}):\n{tail(logs[child.pid])}")
                return 1
        time.sleep(0.5)


def simulator_command(
    settings: RunSettings, night: demo_hours.DemoNight | None = None
) -> list[str]:
    closes = ["--closes-at-night", night.simulator_arg(datetime.now(UTC))] if night else []
    return [
        sys.executable, "-m", "clients.simulator",
        "--server", settings.url,
        "--devices", str(settings.devices),
        "--time-scale", settings.time_scale,
        "--seed", settings.seed,
        "--site-outage", demo_alerts.SITE_OUTAGE,
        *closes,
    ]  # fmt: skip


# The simulator enrols its fleet within seconds; a second pass catches the stragglers
# (a device given its history is no longer "enrolled within the last day").
HISTORY_PASSES = (8.0, 30.0)


def backfill_history(env: Mapping[str, str], log: Path) -> threading.Thread:
    """A week of made-up history for the demo devices once they have enrolled, in the background."""

    def run() -> None:
        waited = 0.0
        for at in HISTORY_PASSES:
            time.sleep(at - waited)
            waited = at
            with log.open("a") as out:
                subprocess.run(
                    flask_command("reports", "demo-history", "--days", "7"),
                    env=dict(env), stdout=out, stderr=subprocess.STDOUT, check=False,
                )  # fmt: skip

    thread = threading.Thread(target=run, name="demo-history", daemon=True)
    thread.start()
    return thread


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Run until Ctrl-C or SIGTERM, then stop every child, the simulator first."""
    settings = run_settings(os.environ)
    env = child_env(settings, os.environ)
    signal.signal(signal.SIGTERM, _interrupt)
    children: list[subprocess.Popen] = []
    try:
        return serve(settings, env, children)
    except KeyboardInterrupt:
        say("\nstopping ...")
        return 0
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave a child behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            stop_child(child)
        if children:
            say("stopped")


if __name__ == "__main__":
    sys.exit(main())
