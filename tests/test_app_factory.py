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


class Greeting:
    """A view that is an object with __eq__ and so no hash."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Flask-WTF and Flask-Limiter name views by these.
        self.__name__ = self.__qualname__ = "greeting"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Greeting) and other.text == self.text

    def __call__(self) -> str:
        return self.text


def test_a_view_that_cannot_be_hashed_still_answers(app):
    app.add_url_rule("/_greeting", "greeting", Greeting("hello"))
    client = app.test_client()
    assert [client.get("/_greeting").text for _ in range(2)] == ["hello", "hello"]
