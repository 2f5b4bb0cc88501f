"""Alembic environment of the console: runs on the connection ``console.database.migrate`` hands it."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table="console_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
