"""Account rules: each role may do what the roles before it may."""

import pytest

from fleet.accounts import role_allows


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "operator", False),
        ("operator", "viewer", True),
        ("admin", "operator", True),
        ("nobody", "viewer", False),
    ],
)
def test_each_role_may_do_what_the_roles_before_it_may(role, needed, allowed):
    assert role_allows(role, needed) is allowed
