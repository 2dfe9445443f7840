"""The web console: static files under /console, public like any page; every call it makes
to the API carries the user's own key, so the API's scopes decide what it shows."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the console at /console/ (the bare /console redirects there).

    A mount and a plain route, not API routes: ``guard`` checks keys on API routes only, and
    the shell holds no data; it asks the user for a key and sends it with every API call.
    """
    app.add_route(
        "/console", lambda _request: RedirectResponse("/console/"), include_in_schema=False
    )
    app.mount("/console", StaticFiles(directory=STATIC, html=True), name="console")
