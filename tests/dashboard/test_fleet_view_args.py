"""The fleet page carries only its own view's keys into its links and its poll."""

import pytest


@pytest.mark.parametrize("query", ["endpoint=x", "_external=1", "_scheme=ftp", "_anchor=x"])
def test_url_for_keywords_in_the_query_are_ignored(client, login, query):
    login("viewer")
    page = client.get(f"/?status=disconnected&{query}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "status=disconnected" in html
    assert "http://localhost/poll" not in html and "ftp:" not in html
