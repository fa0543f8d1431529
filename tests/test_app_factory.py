"""The app class itself: what Pulseboard changes in Flask's request handling."""

from flask import after_this_request


def test_per_request_callbacks_run_every_time_and_are_not_kept(app):
    ran = []

    @app.get("/_callback")
    def with_callback():
        @after_this_request
        def mark(response):
            ran.append(response.status_code)
            response.headers["X-Marked"] = "yes"
            return response

        return "ok"

    client = app.test_client()
    requests = app.SYNC_CACHE_SIZE + 10
    marked = [client.get("/_callback").headers.get("X-Marked") for _ in range(requests)]
    assert marked == ["yes"] * requests
    assert ran == [200] * requests
    assert len(app._sync_callables) <= app.SYNC_CACHE_SIZE
