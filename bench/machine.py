"""Facts about the machine a benchmark ran on, for the tables in ``docs/benchmarks.md``.

Shared by every benchmark under ``bench/`` so their results say the same things the same way.
Reads ``/proc`` on Linux and degrades to ``unknown`` elsewhere.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class MachineFacts:
    cpu_model: str
    cores: int
    ram_gib: float
    os_name: str
    python: str
    sqlite: str
    sqlalchemy: str
    psycopg: str
    git_revision: str
    postgresql: str | None = None

    def markdown(self) -> str:
        """A bullet list ready to paste under a results table."""
        lines = [
            f"- CPU: {self.cpu_model}, {self.cores} cores available",
            f"- RAM: {self.ram_gib:.1f} GiB",
            f"- OS: {self.os_name}",
            f"- Python {self.python}, SQLAlchemy {self.sqlalchemy}, psycopg {self.psycopg}",
            f"- SQLite {self.sqlite}",
            f"- tokenwage at {self.git_revision}",
        ]
        if self.postgresql:
            lines.append(f"- PostgreSQL {self.postgresql}")
        return "\n".join(lines)


def machine_facts(postgresql: str | None = None) -> MachineFacts:
    return MachineFacts(
        cpu_model=_cpu_model(),
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
        ram_gib=_ram_kib() / 1024 / 1024,
        os_name=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        sqlalchemy=_version("sqlalchemy"),
        psycopg=_version("psycopg"),
        git_revision=_git_revision(),
        postgresql=postgresql,
    )


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def _ram_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    """``HEAD``'s short hash, with ``+ uncommitted changes`` when the work tree differs."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=_REPO,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"{head} + uncommitted changes" if dirty else head
