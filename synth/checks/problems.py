"""What a check file's problem is: the one type every loader reports (a leaf module, so
the loader and the YAML reader both import it without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadProblem:
    """Why a file (or part of it) did not load; `line` is 1-based, None when unknown."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"
