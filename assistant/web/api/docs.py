"""`/docs` (Swagger UI) and `/redoc` (ReDoc) served from vendored assets, never a CDN.

FastAPI's default pages load Swagger UI and ReDoc from cdn.jsdelivr.net (and fonts from
Google): offline they stay blank. The files under `assistant/web/static/docs/` (pinned
versions and licences in its README.md) are served at `/static/docs/…`, and the two pages
reference only those. `install(app)` is called only when docs are served at all
(development, or `ASSISTANT_PUBLIC_DOCS=true`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_DIR = Path(__file__).resolve().parents[1] / "static" / "docs"
ASSETS_PATH = "/static/docs"
ASSET_VERSIONS = {"swagger-ui-dist": "5.35.0", "redoc": "2.5.4"}
_MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "redoc.standalone.js")


def _url(name: str) -> str:
    # The version in the query string: a new vendored release is not served from a stale cache.
    version = ASSET_VERSIONS["redoc" if name.startswith("redoc") else "swagger-ui-dist"]
    return f"{ASSETS_PATH}/{name}?v={version}"


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Add GET /docs, /redoc and /static/docs/{asset} to `app` (built with docs_url=None, redoc_url=None)."""
    title = f"{app.title} · API"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=_url("swagger-ui-bundle.js"),
            swagger_css_url=_url("swagger-ui.css"),
            swagger_favicon_url=_url("favicon-32x32.png"),
            # No validator badge: it would ask validator.swagger.io about the spec.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=_url("redoc.standalone.js"),
            redoc_favicon_url=_url("favicon-32x32.png"),
            with_google_fonts=False,
        )

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, f"No docs asset {name!r}.")
        path = ASSETS_DIR / name
        return FileResponse(
            path,
            media_type=_MEDIA[path.suffix],
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )
