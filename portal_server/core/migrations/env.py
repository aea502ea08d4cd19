"""Alembic environment: migrations run against the URL given by ``db.upgrade``."""
from alembic import context

from portal_server.core.db import Base, make_engine
from portal_server.models import load_all_models

load_all_models()
config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.attributes.get("engine_url") or config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
