"""The ceiling for the heartbeat benchmark: the same essential work, nothing else.

Parse JSON, look up the device by token hash, one indexed UPDATE, answer JSON,
with psycopg directly (a connection per thread). Served by the same gunicorn
settings as the real app, so the ratio between the two is what our code costs.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime, timedelta

import psycopg
from flask import Flask, Response, request

app = Flask(__name__)
_local = threading.local()
DATABASE_URL = os.environ["DATABASE_URL"].replace("+psycopg", "")


def connection() -> psycopg.Connection:
    # Autocommit: the UPDATE is the whole transaction, one round trip with no BEGIN or COMMIT.
    if getattr(_local, "conn", None) is None:
        _local.conn = psycopg.connect(DATABASE_URL, autocommit=True)
    return _local.conn


@app.post("/api/devices/heartbeat")
def heartbeat() -> Response:
    body = json.loads(request.get_data() or b"{}")
    token = request.headers["Authorization"].removeprefix("Bearer ")
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    now = datetime.now(UTC)
    conn = connection()
    with conn.cursor() as cursor:
        cursor.execute(
            "UPDATE device SET last_heartbeat_at = %s, battery_level = %s, wifi_strength = %s,"
            " offline_due_at = %s, disconnect_due_at = %s WHERE token_hash = %s RETURNING status",
            (
                now,
                body.get("battery_level"),
                body.get("wifi_strength"),
                now + timedelta(seconds=60),
                now + timedelta(seconds=300),
                token_hash,
            ),
        )
        row = cursor.fetchone()
    if row is None:
        return Response('{"error": "unauthorized"}', 401, mimetype="application/json")
    answer = {
        "status": row[0],
        "server_time": now.isoformat(),
        "heartbeat_interval_seconds": 30,
        "should_reconnect": False,
        "reconnect_delay_seconds": 0,
    }
    return Response(json.dumps(answer), 200, mimetype="application/json")
