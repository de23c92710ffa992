"""The chart library, served from where ``make assets`` installed it (never a copy in the
repository, never a CDN).

``TOKENWAGE_ASSETS_DIR`` names the ``node_modules`` directory (default: ``assets/node_modules``
of the source checkout). Only the files listed in :data:`VENDOR_FILES` are served.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokenwage.core.errors import NotFound

URL_PREFIX = "/static/vendor"  # before the /static mount: see create_web_app
# name served under URL_PREFIX -> path inside node_modules
VENDOR_FILES = {"chart.umd.min.js": "chart.js/dist/chart.umd.min.js"}
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
            "TOKENWAGE_ASSETS_DIR to the node_modules directory holding chart.js"
        )
    return path


@router.get(URL_PREFIX + "/{name}")
def vendor(name: str) -> FileResponse:
    return FileResponse(
        vendor_file(name),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )
