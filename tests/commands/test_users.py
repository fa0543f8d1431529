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
