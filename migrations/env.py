"""Alembic environment for Mistral's schema history.

The caller (``mistral_db_flows.migration``) hands over the database URL,
and optionally an open connection and the target metadata, through
``config.attributes`` so that passwords never pass through an ini file.
"""
from alembic import context

config = context.config


def _configure_args() -> dict:
    args = dict(
        target_metadata=config.attributes.get("target_metadata"),
        # One transaction per revision: where DDL is transactional
        # (PostgreSQL), a failed revision leaves the previous one intact.
        transaction_per_migration=True,
        compare_type=True,
    )
    reached = config.attributes.get("reached")
    if reached is not None:
        # The heads after each revision, as Alembic wrote them (it
        # checks that its UPDATE of alembic_version matched one row):
        # the caller need not read the table back.
        def note(ctx, step, heads, run_args) -> None:
            reached[:] = sorted(heads)

        args["on_version_apply"] = [note]
    return args


def run_migrations_offline() -> None:
    context.configure(
        url=config.attributes["url"],
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_args())
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection) -> None:
    context.configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        **_configure_args())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    import sqlalchemy as sa

    engine = sa.create_engine(config.attributes["url"],
                              poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            _run_on(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
