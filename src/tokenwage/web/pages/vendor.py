"""The browser libraries (chart.js for the pages, Swagger UI for ``/api/docs``), served
from where ``make assets`` installed them (never a copy in the repository, never a CDN).

``TOKENWAGE_ASSETS_DIR`` names the ``node_modules`` directory (default: ``assets/node_modules``
of the source checkout). Only the files listed in :data:`VENDOR_FILES` are served.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokenwage.core.errors import NotFound

URL_PREFIX = "/static/vendor"  # before the /static mount: see create_web_app
# name served under URL_PREFIX -> path inside node_modules
VENDOR_FILES = {
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "swagger-favicon.png": "swagger-ui-dist/favicon-32x32.png",
}
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
CHART_JS = f"{URL_PREFIX}/chart.umd.min.js"
_CHECKOUT_ASSETS = Path(__file__).resolve().parents[4] / "assets" / "node_modules"

router = APIRouter(include_in_schema=False)


class AssetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOKENWAGE_", extra="ignore")

    assets_dir: Path = _CHECKOUT_ASSETS


@cache
def assets_dir() -> Path:
    return AssetSettings().assets_dir


def vendor_file(name: str, root: Path | None = None) -> Path:
    """The installed file served as ``name``, or NotFound with what to run."""
    inside = VENDOR_FILES.get(name)
    if inside is None:
        raise NotFound(f"no vendor file {name!r}; served are {', '.join(sorted(VENDOR_FILES))}")
    base = root or assets_dir()
    path = base / inside
    if not path.is_file():
        raise NotFound(
            f"{path} is missing: run `make assets` (npm ci --prefix assets), or set "
            "TOKENWAGE_ASSETS_DIR to the node_modules directory holding it"
        )
    return path


@router.get(URL_PREFIX + "/{name}")
def vendor(name: str) -> FileResponse:
    path = vendor_file(name)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/api/docs")
def api_docs() -> HTMLResponse:
    """Swagger UI for ``/openapi.json``, from the installed package rather than FastAPI's
    default CDN."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="tokenwage API",
        swagger_js_url=f"{URL_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{URL_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{URL_PREFIX}/swagger-favicon.png",
    )
