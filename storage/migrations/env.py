"""Alembic's entry point for reelcast's schema: run on the connection the store opened.

Each store is one branch (`branch_labels`), so a SQLite file carries only its own store's
tables while a PostgreSQL database carries them all, in one `alembic_version` table.
"""

from alembic import context


def run_migrations() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic runs this file inside a migration context; imported anywhere else (the wheel's
# import check), it does nothing.
if hasattr(context, "config"):
    run_migrations()
