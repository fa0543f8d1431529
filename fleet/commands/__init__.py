"""`flask` command groups, one module per area; they run inside the app context."""

from __future__ import annotations

from flask import Flask

# name: (where the real command is, its one-line help as `flask --help` prints it).
# The help is repeated here so that listing the commands imports none of them;
# tests/commands/test_lazy_commands.py checks that it matches the real command's.
AREAS: dict[str, tuple[str, str]] = {
    "alerts": ("fleet.commands.alerts:alerts_cli", "Alert rules, and the delivery worker's round."),
    "channels": (
        "fleet.commands.alerts:channels_cli",
        "Notification channels (Apprise URLs or webhooks).",
    ),
    "devices": ("fleet.commands.devices:devices_cli", "Enrol devices and run status sweeps."),
    "doctor": (
        "fleet.commands.doctor:doctor_command",
        "Check the database, migrations, Redis, sweeps, workers and settings; exit 1 on a problem.",
    ),
    "jobs": ("fleet.commands.jobs:jobs_cli", "Background workers (needs REDIS_URL)."),
    "maintenance": ("fleet.commands.hours:maintenance_cli", "Maintenance windows."),
    "reports": (
        "fleet.commands.reports:reports_cli",
        "Availability rollups and history retention.",
    ),
    "sites": ("fleet.commands.hours:sites_cli", "Sites' operating hours."),
    "tokens": ("fleet.commands.tokens:tokens_cli", "Create, revoke and list service tokens."),
    "users": ("fleet.commands.users:users_cli", "Manage dashboard accounts."),
}


def register_cli(app: Flask) -> None:
    """Attach every command group to the app, each imported only when it runs."""
    from fleet.commands.lazy import LazyCommand
    from fleet.schema import db_cli

    app.cli.add_command(db_cli)
    for name, (import_name, summary) in AREAS.items():
        app.cli.add_command(LazyCommand(name, import_name, help=summary))
