"""Alembic environment: zhiku runs migrations programmatically on the connection it hands over."""

from alembic import context

from zhiku.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
context.run_migrations()
