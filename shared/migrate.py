"""Schema migrations with Alembic, configured in code so the installed package can run them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.settings import Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(settings: Settings | None = None) -> Config:
    settings = settings or get_settings()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.sync_database_url())
    return config


def upgrade(settings: Settings | None = None) -> None:
    """Bring the database to the newest schema."""
    settings = settings or get_settings()
    if settings.is_sqlite:
        path = settings.sync_database_url().removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), "head")
