"""Words the dashboard shows for stored values."""

from dashboard.display import kind_word


def test_event_kinds_read_as_words():
    assert kind_word("re_enrolled") == "re-enrolled"
    assert kind_word("re_enrolment_allowed") == "re-enrolment allowed"
    assert kind_word("reconnect_requested") == "reconnect requested"


def test_an_events_heartbeat_age_reads_as_what_it_means():
    from types import SimpleNamespace

    from dashboard.display import age_note

    def event(**fields):
        return SimpleNamespace(**{"heartbeat_age_seconds": 35.2, "source": "device", **fields})

    assert age_note(event(to_status="connected")) == "after 35 s of silence"
    assert age_note(event(to_status="temporarily_offline", source="external_service")) == (
        "last heartbeat 35 s before"
    )
    assert age_note(event(to_status="disconnected", source="system")) == ""
    assert age_note(event(to_status="connected", heartbeat_age_seconds=None)) == ""
    assert age_note(event(to_status="connected", heartbeat_age_seconds=754)) == (
        "after 12 min 34 s of silence"
    )
