"""The lender dashboard: hand-written static HTML/CSS/JS served under `/dashboard`.

The pages hold no data of their own; they call the JSON API with the API key the user typed
(kept in sessionStorage), so tenancy is enforced by the API exactly as for any other client.
Nothing is fetched from the internet: no CDN, no web fonts, charts are SVG drawn by `app.js`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC_DIR = Path(__file__).parent / "static"

# page name -> file; every page is the same shell, the route decides what app.js renders.
_PAGES = {"index": "index.html", "farm": "farm.html"}


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard pages at `/dashboard` and their assets at `/dashboard/static`."""
    from fastapi.responses import FileResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    needed = [*_PAGES.values(), "app.js", "charts.js", "style.css"]
    missing = [name for name in needed if not (STATIC_DIR / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{STATIC_DIR}: dashboard files missing: {', '.join(missing)}")

    # no-store: pages are tiny and a stale app.js after an upgrade would call endpoints that moved.
    headers = {"Cache-Control": "no-store"}

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_index() -> FileResponse:
        return FileResponse(STATIC_DIR / _PAGES["index"], headers=headers)

    @app.get("/dashboard/", include_in_schema=False)
    def dashboard_index_slash() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=307)

    @app.get("/dashboard/farm/{farm_id}", include_in_schema=False)
    def dashboard_farm(farm_id: str) -> FileResponse:
        # farm_id is read by app.js from the URL; the API decides whether this key may see it.
        return FileResponse(STATIC_DIR / _PAGES["farm"], headers=headers)

    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
