import pytest

from fleet.services import users
from fleet.timeutil import utcnow


def test_it_creates_a_user_with_a_hashed_password(runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Ops@Example.com",
            "--role",
            "operator",
            "--password",
            "s3cret-pass",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "ops@example.com" in result.output
    user = users.authenticate("ops@example.com", "s3cret-pass", utcnow())
    assert user.role == "operator"
    assert "s3cret-pass" not in user.password_hash


def test_it_prompts_for_the_password_when_none_is_given(runner):
    result = runner.invoke(
        args=["users", "create", "a@example.com"], input="long-password\nlong-password\n"
    )
    assert result.exit_code == 0, result.output
    assert users.authenticate("a@example.com", "long-password", utcnow()).role == "viewer"


def test_it_refuses_a_duplicate_a_short_password_and_an_unknown_role(runner):
    args = ["users", "create", "a@example.com", "--password", "long-password"]
    assert runner.invoke(args=args).exit_code == 0
    duplicate = runner.invoke(args=args)
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    short = runner.invoke(args=["users", "create", "b@example.com", "--password", "short"])
    assert short.exit_code != 0 and "at least 8" in short.output
    role = runner.invoke(
        args=["users", "create", "c@example.com", "--role", "root", "--password", "x" * 9]
    )
    assert role.exit_code != 0


def make(runner, email, role="viewer"):
    args = ["users", "create", email, "--role", role, "--password", "long-password"]
    assert runner.invoke(args=args).exit_code == 0


def test_it_lists_accounts_with_role_and_state(runner):
    assert runner.invoke(args=["users", "list"]).output.strip() == "No users."
    make(runner, "b@example.com", "admin")
    make(runner, "a@example.com")
    runner.invoke(args=["users", "deactivate", "b@example.com"])
    lines = runner.invoke(args=["users", "list"]).output.splitlines()
    assert lines[0].split() == ["EMAIL", "ROLE", "ACTIVE", "CREATED", "LAST", "LOGIN"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["a@example.com", "viewer", "yes"],
        ["b@example.com", "admin", "no"],
    ]


def test_a_deactivated_account_can_no_longer_log_in(runner):
    make(runner, "a@example.com")
    result = runner.invoke(args=["users", "deactivate", "A@example.com"])
    assert result.exit_code == 0, result.output
    assert users.authenticate("a@example.com", "long-password", utcnow()) is None


def test_it_sets_a_role(runner):
    make(runner, "a@example.com")
    result = runner.invoke(args=["users", "set-role", "a@example.com", "operator"])
    assert result.exit_code == 0, result.output
    assert users.authenticate("a@example.com", "long-password", utcnow()).role == "operator"
    assert runner.invoke(args=["users", "set-role", "a@example.com", "root"]).exit_code != 0


def test_it_resets_a_password_to_one_printed_alone_on_the_last_line(runner):
    make(runner, "a@example.com")
    result = runner.invoke(args=["users", "reset-password", "a@example.com"])
    assert result.exit_code == 0, result.output
    new_password = result.output.splitlines()[-1]
    assert len(new_password) >= 20 and " " not in new_password
    assert users.authenticate("a@example.com", new_password, utcnow()) is not None
    assert users.authenticate("a@example.com", "long-password", utcnow()) is None


def test_it_resets_a_password_to_one_given_and_refuses_a_short_one(runner):
    make(runner, "a@example.com")
    args = ["users", "reset-password", "a@example.com", "--password"]
    assert runner.invoke(args=[*args, "short"]).exit_code != 0
    assert runner.invoke(args=[*args, "a-new-long-password"]).exit_code == 0
    assert users.authenticate("a@example.com", "a-new-long-password", utcnow()) is not None


@pytest.mark.parametrize(
    "args",
    [["deactivate"], ["set-role", "--", "viewer"], ["reset-password"]],
)
def test_it_names_an_unknown_account(runner, args):
    command = [args[0], "nobody@example.com", *[a for a in args[1:] if a != "--"]]
    result = runner.invoke(args=["users", *command])
    assert result.exit_code != 0
    assert "no user with email 'nobody@example.com'" in result.output
