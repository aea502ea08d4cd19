"""Import every table so that metadata (Alembic, tests) sees them all."""
import importlib
import importlib.util

from portal_server.features import FEATURES


def load_all_models() -> None:
    from portal_server.core import accounts, audit, households, regions, speech, terminals  # noqa: F401

    for pkg in FEATURES:
        name = pkg + ".models"
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name)
