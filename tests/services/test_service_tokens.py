from datetime import timedelta

import pytest
from sqlalchemy import select

from fleet.errors import AlreadyExists, InvalidInput
from fleet.extensions import db
from fleet.models import ServiceToken
from fleet.services import service_tokens
from fleet.services.service_tokens import TokenNotFound, authenticate, create_token, revoke_token
from fleet.timeutil import utcnow

T0 = utcnow().replace(microsecond=0)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def stored(name: str) -> ServiceToken:
    db.session.expire_all()
    return db.session.execute(select(ServiceToken).where(ServiceToken.name == name)).scalar_one()


def test_it_hands_out_a_prefixed_token_and_stores_only_its_hash(app):
    token = create_token("pinger", ["ping"], T0)
    assert token.startswith("pbs_") and len(token) > 40
    row = stored("pinger")
    assert token not in (row.token_hash, row.scopes, row.name)
    assert len(row.token_hash) == 64


def test_it_authenticates_a_token_with_its_scopes(app):
    token = create_token("ops-script", ["read", "operate"], T0)
    identity = authenticate(token, at(1))
    assert (identity.name, identity.scopes, identity.actor) == (
        "ops-script",
        frozenset({"read", "operate"}),
        "token:ops-script",
    )


@pytest.mark.parametrize(
    "presented", ["", "pbs_unknown", "pbd_" + "x" * 43, "Bearer pbs_x", "pbs_\udcff"]
)
def test_it_refuses_unknown_tokens(app, presented):
    create_token("pinger", ["ping"], T0)
    assert authenticate(presented, at(1)) is None


def test_a_device_token_is_not_a_service_token(make_device):
    device = make_device("kiosk-1")
    assert authenticate(device.token, utcnow()) is None


def test_a_revoked_token_stops_working(app):
    token = create_token("pinger", ["ping"], T0)
    info = revoke_token("pinger", at(5))
    assert info.revoked_at == at(5)
    assert authenticate(token, at(6)) is None


def test_revoking_twice_keeps_the_first_time(app):
    create_token("pinger", ["ping"], T0)
    revoke_token("pinger", at(5))
    assert revoke_token("pinger", at(9)).revoked_at == at(5)


def test_it_refuses_to_revoke_an_unknown_token(app):
    with pytest.raises(TokenNotFound):
        revoke_token("nobody", T0)


def test_names_are_unique(app):
    create_token("pinger", ["ping"], T0)
    with pytest.raises(AlreadyExists):
        create_token("pinger", ["read"], T0)


@pytest.mark.parametrize("scopes", [[], ["superuser"], ["ping", "root"]])
def test_it_refuses_unknown_scopes(app, scopes):
    with pytest.raises(InvalidInput):
        create_token("pinger", scopes, T0)
    assert service_tokens.list_tokens() == []


def test_it_records_last_use_at_most_once_a_minute(app):
    token = create_token("pinger", ["ping"], T0)
    assert stored("pinger").last_used_at is None
    authenticate(token, at(10))
    assert stored("pinger").last_used_at == at(10)
    authenticate(token, at(40))
    assert stored("pinger").last_used_at == at(10)
    authenticate(token, at(70))
    assert stored("pinger").last_used_at == at(70)


def test_it_lists_tokens_with_their_state(app):
    create_token("b-reader", ["read"], T0)
    create_token("a-pinger", ["read", "ping"], T0)
    revoke_token("b-reader", at(3))
    listed = service_tokens.list_tokens()
    assert [(t.name, t.scopes, t.revoked_at) for t in listed] == [
        ("a-pinger", ("ping", "read"), None),
        ("b-reader", ("read",), at(3)),
    ]
