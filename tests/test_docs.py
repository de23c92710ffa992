"""Docs that can drift are generated; this fails when docs/cli.md is stale (run `make docs`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current(tmp_path: Path) -> None:
    typer_bin = Path(sys.executable).parent / "typer"
    out = tmp_path / "cli.md"
    subprocess.run(
        [
            str(typer_bin),
            "tokenwage.cli.app",
            "utils",
            "docs",
            "--name",
            "tokenwage",
            "--title",
            "tokenwage CLI reference",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"},
    )
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert out.read_text() == committed, "docs/cli.md is stale: run `make docs` and commit it"


def test_readme_quickstart_has_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [
        line.split("#")[0].strip() for line in quickstart.splitlines() if line.startswith("make ")
    ]
    assert commands == ["make demo", "make test"]
