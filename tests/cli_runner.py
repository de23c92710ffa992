"""Run ``tokenwage --database-url URL ...`` in-process and capture what it printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tokenwage.cli.app import main


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """``tokenwage --database-url URL ...`` in-process."""

    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def __call__(self, *args: str) -> Ran:
        self.capsys.readouterr()
        code = 0
        try:
            main(["--database-url", self.url, *args])
        except SystemExit as exc:  # Click exits even on success
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        captured = self.capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    def ok(self, *args: str) -> Ran:
        ran = self(*args)
        assert ran.code == 0, f"tokenwage {' '.join(args)} exited {ran.code}: {ran.err}"
        return ran
