"""``tokenwage.core`` stays pure: no web, SQL, CLI or rendering libraries, and none of the
adapter packages around it. Checked on the source (every ``import``, ``from ... import``,
relative import and ``importlib.import_module("...")`` / ``__import__("...")`` with a literal
name, wherever it appears, ``TYPE_CHECKING`` blocks and function bodies included)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import tokenwage.core

CORE = Path(tokenwage.core.__file__).parent
FORBIDDEN_LIBRARIES = frozenset(
    {
        "sqlalchemy",
        "alembic",
        "typer",
        "rich",
        "starlette",
        "fastapi",
        "uvicorn",
        "aiohttp",
        "httpx",
        "jinja2",
    }
)
FORBIDDEN_PACKAGES = tuple(
    f"tokenwage.{name}"
    for name in (
        "storage",
        "gateway",
        "web",
        "cli",
        "services",
        "render",
        "mock_upstream",
        "importers",
    )
)


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything ``tree`` (the source of ``module``) imports."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:  # ``from tokenwage import storage`` names a module
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func, first = node.func, node.args[0]
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                if isinstance(first.value, str):
                    yield node.lineno, first.value


def violations(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    found = []
    for line, name in imported(ast.parse(source), module, is_package):
        top = name.split(".")[0]
        if top in FORBIDDEN_LIBRARIES or any(
            name == p or name.startswith(p + ".") for p in FORBIDDEN_PACKAGES
        ):
            found.append((line, name))
    return found


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_imports_no_adapters_and_no_web_sql_or_cli_libraries() -> None:
    files = core_files()
    assert {"ledger.py", "money.py", "errors.py"} <= {f.name for f in files}
    seen = {
        name
        for path in files
        for _, name in imported(
            ast.parse(path.read_text(encoding="utf-8")), module_name(path), False
        )
    }
    assert {"orjson", "tokenwage.core.errors", "decimal"} <= seen  # the walk reads real code
    problems = [
        f"{path.relative_to(CORE.parent.parent)}:{line} imports {name}"
        for path in files
        for line, name in violations(
            path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py"
        )
    ]
    assert problems == [], "tokenwage.core must stay pure:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy",
        "import sqlalchemy.orm as orm",
        "from sqlalchemy import select",
        "from alembic.config import Config",
        "import typer",
        "from rich.table import Table",
        "from starlette.requests import Request",
        "import fastapi",
        "import uvicorn",
        "import aiohttp",
        "import httpx",
        "from jinja2 import Environment",
        "from tokenwage.storage.db import Database",
        "import tokenwage.gateway.openai",
        "from tokenwage.web import views",
        "from tokenwage import cli",
        "from tokenwage.services.books import grant",
        "from tokenwage.render.statement import statement_text",
        "from tokenwage.mock_upstream import app",
        "from tokenwage.importers.codex import read",
        "from ..storage import ledger_repo",
        "from .. import services",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tokenwage.web import app",
        "def later():\n    import httpx\n    return httpx",
        "import importlib\nrepo = importlib.import_module('tokenwage.storage.ledger_repo')",
        "sa = __import__('sqlalchemy')",
    ],
)
def test_the_check_catches_a_forbidden_import(source: str) -> None:
    assert violations(source, "tokenwage.core.example") != []


@pytest.mark.parametrize(
    "source",
    [
        "from tokenwage.core.money import Money",
        "from . import money",
        "from .ledger import Entry",
        "from tokenwage.core import errors",
        "import orjson",
        "import genai_prices",
        "from decimal import Decimal",
        "import tokenwage.core.periods",
        "from tokenwage import core",
        "storage = 'tokenwage.storage'",
        "import sqlalchemy_utils_lookalike_is_not_sqlalchemy as x",
    ],
)
def test_the_check_allows_pure_imports(source: str) -> None:
    assert violations(source, "tokenwage.core.example") == []


def test_relative_imports_resolve_from_the_importing_module() -> None:
    assert violations("from . import storage", "tokenwage.core.example") == []
    assert violations("from . import storage", "tokenwage.core", is_package=True) == []
    assert violations("from .. import storage", "tokenwage.core", is_package=True) == [
        (1, "tokenwage.storage")
    ]
