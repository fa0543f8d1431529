"""What the Alerts page shows, in one call."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.alert_models import AlertLog
from fleet.services.alerts import audit, channels, incidents, ruleset
from fleet.services.alerts.channels import ChannelInfo
from fleet.services.alerts.incidents import IncidentView
from fleet.services.alerts.ruleset import Rule

HISTORY = 50


@dataclass(frozen=True)
class AlertsScreen:
    active: list[IncidentView]
    history: list[IncidentView]
    rules: list[Rule]
    channels: list[ChannelInfo]
    channel_names: dict[int, str]
    log: list[AlertLog]

    def describe(self, rule: Rule) -> str:
        return ruleset.describe(rule)


def alerts_screen() -> AlertsScreen:
    """Open incidents first, then the history; rules, channel health and the alert log."""
    views = incidents.list_incidents(limit=200)
    active = [view for view in views if view.incident.state != "resolved"]
    history = [view for view in views if view.incident.state == "resolved"][:HISTORY]
    return AlertsScreen(
        active=active,
        history=history,
        rules=ruleset.load_rules(),
        channels=channels.list_channels(),
        channel_names=channels.channel_names(),
        log=audit.recent_log(),
    )
