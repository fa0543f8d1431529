"""Command groups whose code is imported only when the command runs.

`flask --help` and every `flask ...` from cron build the app, and the app lists
every command; importing each area's commands (and through them its services,
models and schemas) to print one line of help each is most of a command's
start-up. Each area is registered as a `LazyCommand`: its name and one-line
help are written here, and asked to parse its arguments it hands over to the
real group (its options, subcommands and help), which it imports then. This is
Click's own way of loading commands lazily (a group that resolves on demand);
a test checks that each entry's help matches the real group's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from werkzeug.utils import import_string


class LazyCommand(click.Group):
    """A command that stands for the one at `import_name` ("module:attribute") until it runs."""

    def __init__(
        self,
        name: str,
        import_name: str,
        help: str,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, help=help)
        self.import_name = import_name
        self.prepare = prepare

    def loaded(self) -> click.Command:
        """The real command; `prepare` first runs what it needs (e.g. Flask-Migrate's set-up)."""
        if self.prepare is not None:
            self.prepare()
        return import_string(self.import_name)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        return self.loaded().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self.loaded().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        command = self.loaded()
        return command.list_commands(ctx) if isinstance(command, click.Group) else []

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = self.loaded()
        return command.get_command(ctx, name) if isinstance(command, click.Group) else None
