"""How commands print: aligned tables and times, the same in every group."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import click


def when(moment: datetime | None) -> str:
    """A UTC time to the second, or "-" for none."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> None:
    """`rows` under `header`, each column as wide as its widest cell; `empty` when none."""
    if not rows:
        click.echo(empty)
        return
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
