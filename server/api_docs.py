"""Interactive API docs (Swagger UI) served from the pinned `swagger-ui-bundle` package:
no CDN, and no inline script, so the page keeps the same security policy as the client."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

PAGES = Path(__file__).with_name("docs")


def mount_docs(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(PAGES / "index.html", media_type="text/html")

    @app.get("/docs/init.js", include_in_schema=False)
    async def docs_init() -> FileResponse:
        return FileResponse(PAGES / "init.js", media_type="text/javascript")

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")
