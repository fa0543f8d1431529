from fleet.services.service_tokens import authenticate
from fleet.timeutil import utcnow


def create(runner, name="pinger", *scopes):
    args = ["tokens", "create", name]
    for scope in scopes or ("ping",):
        args += ["--scope", scope]
    return runner.invoke(args=args)


def test_it_prints_the_token_alone_on_the_last_line(runner):
    result = create(runner, "pinger", "ping", "read")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("pbs_") and " " not in token
    assert authenticate(token, utcnow()).scopes == frozenset({"ping", "read"})


def test_it_refuses_an_unknown_scope(runner):
    result = create(runner, "pinger", "superuser")
    assert result.exit_code == 2
    assert "superuser" in result.output


def test_it_requires_a_scope(runner):
    result = runner.invoke(args=["tokens", "create", "pinger"])
    assert result.exit_code == 2
    assert "--scope" in result.output


def test_it_refuses_a_duplicate_name(runner):
    create(runner, "pinger")
    result = create(runner, "pinger")
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_a_revoked_token_stops_working_and_shows_as_revoked(runner):
    token = create(runner, "pinger").output.strip().splitlines()[-1]
    result = runner.invoke(args=["tokens", "revoke", "pinger"])
    assert result.exit_code == 0, result.output
    assert authenticate(token, utcnow()) is None
    lines = runner.invoke(args=["tokens", "list"]).output.splitlines()
    assert lines[0].split() == ["NAME", "SCOPES", "CREATED", "LAST", "USED", "REVOKED"]
    assert lines[1].startswith("pinger  ping  ")
    assert not lines[1].endswith("-")


def test_it_refuses_to_revoke_an_unknown_token(runner):
    result = runner.invoke(args=["tokens", "revoke", "nobody"])
    assert result.exit_code == 1
    assert "no service token named 'nobody'" in result.output


def test_it_lists_scopes_and_last_use(runner):
    token = create(runner, "reader", "read", "operate").output.strip().splitlines()[-1]
    authenticate(token, utcnow())
    (row,) = runner.invoke(args=["tokens", "list"]).output.splitlines()[1:]
    name, scopes, _created_day, _created_time, used_day, _used_time, revoked = row.split()
    assert (name, scopes, revoked) == ("reader", "read,operate", "-")
    assert used_day != "-"


def test_it_says_when_there_are_no_tokens(runner):
    assert runner.invoke(args=["tokens", "list"]).output.strip() == "No service tokens."
