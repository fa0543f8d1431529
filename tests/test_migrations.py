"""The migrations build exactly the schema the models declare, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fleet.extensions import db


def test_the_migrated_schema_matches_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []
