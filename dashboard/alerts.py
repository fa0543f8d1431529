"""The Alerts page (incidents, acknowledge) and the channels page (admins), with "Send test"."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.auth import requires_role
from fleet.errors import FleetError
from fleet.services.alerts import channels, incidents, screens, service
from fleet.timeutil import utcnow


def device_incident(device_id: int):
    """The firing incident naming this device, if any; read once per request for every row."""
    if "pulseboard_device_incidents" not in g:
        g.pulseboard_device_incidents = incidents.firing_by_device()
    return g.pulseboard_device_incidents.get(device_id)


def alerts():
    return render_template("dashboard/alerts.html", screen=screens.alerts_screen())


@requires_role("operator")
def acknowledge(incident_id: int):
    view = incidents.acknowledge_view(
        incident_id, current_user.email, request.form.get("note"), utcnow()
    )
    return render_template(
        "dashboard/_incident.html", view=view, channel_names=channels.channel_names()
    )


@requires_role("admin")
def alert_channels():
    return render_template("dashboard/channels.html", channels=channels.list_channels())


@requires_role("admin")
def add_channel():
    try:
        added = channels.add_channel(
            request.form.get("name", ""), request.form.get("url", ""), current_user.email, utcnow()
        )
    except FleetError as error:
        flash(error.message, "error")
        return redirect(url_for("dashboard.alert_channels"))
    message = f"Channel {added.name} added ({added.masked_url})."
    if added.generated_secret:
        message += f" Webhook signing secret, shown once: {added.generated_secret}"
    flash(message, "ok")
    return redirect(url_for("dashboard.alert_channels"))


@requires_role("admin")
def remove_channel(name: str):
    channels.remove_channel(name, current_user.email, utcnow())
    flash(f"Channel {name} removed.", "ok")
    # htmx follows HX-Redirect, so the page reloads with the flash.
    return "", 204, {"HX-Redirect": url_for("dashboard.alert_channels")}


@requires_role("admin")
def test_channel(name: str):
    # Queued, not sent: only the delivery worker sends. The fragment polls for the outcome.
    notification_id = service.queue_test(name, current_user.email, utcnow())
    return render_template("dashboard/_test_result.html", row=service.test_result(notification_id))


@requires_role("admin")
def test_result(notification_id: int):
    row = service.test_result(notification_id)
    html = render_template("dashboard/_test_result.html", row=row)
    # 286 tells htmx to stop polling once the outcome is known.
    return html, 286 if row.state in ("sent", "failed") else 200
