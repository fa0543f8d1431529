"""`flask` command groups, one module per area; they run inside the app context."""

from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    """Attach every command group to the app."""
    from fleet.commands.alerts import alerts_cli, channels_cli
    from fleet.commands.devices import devices_cli
    from fleet.commands.doctor import doctor_command
    from fleet.commands.hours import maintenance_cli, sites_cli
    from fleet.commands.jobs import jobs_cli
    from fleet.commands.reports import reports_cli
    from fleet.commands.tokens import tokens_cli
    from fleet.commands.users import users_cli
    from fleet.schema import db_cli

    app.cli.add_command(db_cli)
    app.cli.add_command(alerts_cli)
    app.cli.add_command(channels_cli)
    app.cli.add_command(devices_cli)
    app.cli.add_command(doctor_command)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(reports_cli)
    app.cli.add_command(maintenance_cli)
    app.cli.add_command(sites_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(users_cli)
