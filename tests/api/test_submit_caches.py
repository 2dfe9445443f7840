"""The flow versions submits read, refreshed off the request path."""

from __future__ import annotations

import time

from api.services import flows as flow_service
from api.services.flows import FlowRef
from shared.db import create_engine, session_factory
from shared.settings import Settings
from tests.support.stack import Stack


async def test_refresh_updates_old_entries_and_leaves_newer_ones(stack: Stack) -> None:
    engine = create_engine(Settings(database_url=stack.env["FLOWFLEET_DATABASE_URL"]))
    refs = flow_service._refs
    saved = dict(refs)
    refs.clear()
    try:
        refs["prompt"] = (0.0, FlowRef("prompt", "python", "stale"))  # exists: re-read
        refs["gone-flow"] = (0.0, FlowRef("gone-flow", "python", "v"))  # deleted: dropped
        # Stamped after the refresh began (an upload here re-read it): the refresh's answer
        # may predate that upload, so it must not overwrite it.
        newer = (time.monotonic() + 60, FlowRef("chat", "python", "just-uploaded"))
        refs["chat"] = newer
        async with session_factory(engine)() as session:
            await flow_service.refresh_flow_refs(session)
        assert refs["prompt"][1].current_version != "stale"
        assert "gone-flow" not in refs
        assert refs["chat"] == newer
    finally:
        refs.clear()
        refs.update(saved)
        await engine.dispose()
