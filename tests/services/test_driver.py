"""Running a prebuilt statement on psycopg itself, on a connection the thread holds."""

import pytest
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.exc import DBAPIError

from fleet.extensions import AUTOCOMMIT_BIND, db
from fleet.models import Device
from fleet.services import driver
from fleet.services.driver import execute_on_driver
from tests.helpers import device_row

RENAME = update(Device).where(Device.uid == bindparam("p_uid")).values(site=bindparam("p_site"))
BREAK = update(Device).where(Device.uid == bindparam("p_uid")).values(uid=None)


@pytest.fixture
def engine(app, backend):
    if backend != "postgres":
        pytest.skip("only PostgreSQL heartbeats run on the driver")
    return db.engines[AUTOCOMMIT_BIND]


def test_it_runs_the_statement_and_counts_the_rows(engine, make_device):
    make_device("kiosk-1")
    assert execute_on_driver(engine, RENAME, {"p_uid": "kiosk-1", "p_site": "Lobby"}) == 1
    assert execute_on_driver(engine, RENAME, {"p_uid": "nobody", "p_site": "Lobby"}) == 0
    assert device_row("kiosk-1").site == "Lobby"  # autocommitted


def test_a_statement_that_returns_rows_counts_them(engine, make_device):
    for n in range(3):
        make_device(f"kiosk-{n}")
    others = select(Device.id).where(Device.uid != bindparam("p_uid"))
    assert execute_on_driver(engine, others, {"p_uid": "kiosk-0"}) == 2


@pytest.fixture
def checkins(engine):
    """How many times a connection went back to the engine's pool."""
    count = []
    listener = lambda *_: count.append(1)  # noqa: E731
    event.listen(engine.pool, "checkin", listener)
    yield lambda: len(count)
    event.remove(engine.pool, "checkin", listener)


def test_a_thread_holds_one_connection_between_statements(engine, make_device, checkins):
    make_device("kiosk-1")
    execute_on_driver(engine, RENAME, {"p_uid": "kiosk-1", "p_site": "A"})
    before = checkins()
    for site in ("B", "C", "D"):
        execute_on_driver(engine, RENAME, {"p_uid": "kiosk-1", "p_site": site})
    assert engine.pool.checkedout() == 1
    assert checkins() == before


def test_a_held_connection_goes_back_to_the_pool_after_a_while(
    engine, make_device, checkins, monkeypatch
):
    make_device("kiosk-1")
    # The hold is timed on the monotonic clock, which time-machine leaves alone:
    # a hold of no time at all is over by the next statement.
    monkeypatch.setattr(driver, "HOLD_SECONDS", 0.0)
    execute_on_driver(engine, RENAME, {"p_uid": "kiosk-1", "p_site": "A"})
    before = checkins()
    execute_on_driver(engine, RENAME, {"p_uid": "kiosk-1", "p_site": "B"})
    # Given back, so the pool's recycling applies to it; one is held again.
    assert checkins() == before + 1
    assert engine.pool.checkedout() == 1


def test_a_driver_error_is_raised_as_sqlalchemys_and_drops_the_connection(engine, make_device):
    make_device("kiosk-1")
    execute_on_driver(engine, RENAME, {"p_uid": "kiosk-1", "p_site": "A"})
    with pytest.raises(DBAPIError) as raised:
        execute_on_driver(engine, BREAK, {"p_uid": "kiosk-1"})
    assert not raised.value.connection_invalidated  # the database is up: a bad statement only
    assert engine.pool.checkedout() == 0
    assert execute_on_driver(engine, RENAME, {"p_uid": "kiosk-1", "p_site": "B"}) == 1
