"""The migrations build exactly the schema the models declare, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from fleet.extensions import db

# PostgreSQL hands an expression index back rewritten ('disconnected'::text ...),
# so autogenerate sees it as removed and added again; it is checked by name instead.
EXPRESSION_INDEXES = {"ix_device_severity"}

# SQLAlchemy's inspector leaves expression indexes out on SQLite, so the catalogues are read.
INDEX_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index'",
    "postgresql": "SELECT indexname FROM pg_indexes WHERE tablename = 'device'",
}


def _is_expression_index(difference) -> bool:
    return difference[0] in {"add_index", "remove_index"} and (
        difference[1].name in EXPRESSION_INDEXES
    )


def test_the_migrated_schema_matches_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
        indexes = set(connection.execute(text(INDEX_NAMES[connection.dialect.name])).scalars())
    assert [d for d in differences if not _is_expression_index(d)] == []
    assert indexes >= EXPRESSION_INDEXES
