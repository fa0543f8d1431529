"""The documented settings are the settings object's fields: none missing, none extra."""

import re
from pathlib import Path

from fleet.config import Settings
from fleet.devserver import RunSettings

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| `([A-Z_*]+)` \| ([^|]*) \|", re.MULTILINE)


def table_rows(path: str, heading: str) -> dict[str, str]:
    """variable -> documented default, from the first table after `heading`."""
    text = (ROOT / path).read_text()
    section = text[text.index(heading) :]
    table = section[section.index("| variable |") :]
    table = table[: table.index("\n\n")]
    return {name: default.strip() for name, default in ROW.findall(table)}


def documented() -> dict[str, str]:
    readme = table_rows("README.md", "## Configuration")
    # The README's ALERT_* row points to the alerts' own table.
    assert readme.pop("ALERT_*")
    alerts = table_rows("docs/alerts.md", "## Settings")
    return {**readme, **alerts}


def test_the_configuration_tables_name_exactly_the_settings_fields():
    fields = {name.upper() for name in Settings.model_fields}
    assert set(documented()) == fields


def test_the_documented_numeric_defaults_are_the_fields_defaults():
    numbers = {name: text for name, text in documented().items() if text.isdigit()}
    assert len(numbers) > 30
    for name, text in numbers.items():
        assert Settings.model_fields[name.lower()].default == int(text), name


def test_the_readme_names_every_variable_make_run_reads():
    text = (ROOT / "README.md").read_text()
    sentence = text[text.index("`make run` alone also reads") :].split("\n\n")[0]
    variables = {
        field.validation_alias or name.upper() for name, field in RunSettings.model_fields.items()
    }
    assert variables == set(re.findall(r"`([A-Z_]+)`", sentence)) - {
        "PULSEBOARD_BIND",
        "WEB_CONCURRENCY",
        "GUNICORN_THREADS",
    }
