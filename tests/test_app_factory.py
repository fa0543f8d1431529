"""The app factory: stock Flask apps, and the device paths handed to the device app."""

from flask import Flask

from device_api import device_app_of


def test_it_builds_stock_flask_apps(app):
    assert type(app) is Flask
    assert type(device_app_of(app)) is Flask


def test_the_device_paths_reach_the_device_app_whatever_the_method(client):
    response = client.get("/api/devices/heartbeat")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_paths_near_the_device_paths_stay_with_the_main_app(app, client):
    @app.get("/api/devices/heartbeats")
    def near_miss():
        return "main app"

    assert client.get("/api/devices/heartbeats").text == "main app"
    assert client.post("/api/devices/heartbeat/").status_code == 404


def test_both_apps_answer_with_a_request_id(client):
    for path in ("/api/devices/heartbeat", "/api/admin/devices"):
        assert len(client.get(path).headers["X-Request-ID"]) >= 8
