"""Alembic environment: migrations run on the connection the kernel hands over."""

from alembic import context

from twpcore.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` command line use: build an engine from the URL
    import sqlalchemy as sa

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("alembic.ini: sqlalchemy.url is not set; set it to the TWP store's database URL")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
