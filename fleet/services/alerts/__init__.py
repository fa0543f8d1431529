"""Alerts (issue 15): channels, rules, incidents and the notification outbox.

The status changes drive everything: `evaluate.on_status_events` runs inside
the transaction that records them (from `fleet.services.events.record_events`),
so an incident and its notifications commit or roll back with the change.
"""
