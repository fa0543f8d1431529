"""Words the dashboard shows for stored values."""

from dashboard.display import kind_word


def test_event_kinds_read_as_words():
    assert kind_word("re_enrolled") == "re-enrolled"
    assert kind_word("re_enrolment_allowed") == "re-enrolment allowed"
    assert kind_word("reconnect_requested") == "reconnect requested"
