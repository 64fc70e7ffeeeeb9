"""Errors a user can cause with their retail files, and `ReelcastError`, the root of all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ReelcastError(Exception):
    """Errors a user can cause (a bad file, template, setting); the message says what to do.

    Every package's error base derives from it, so the command line catches this one type
    and prints it as one `error:` line; anything else escaping is our bug, with a traceback.
    """


@dataclass(frozen=True)
class RowProblem:
    """One problem in one row of an input file.

    `line` is the physical line in the file (the header is line 1). The message
    never echoes the cell's value: cells may hold personal data.
    """

    file: Path
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        if self.line == 0:  # about the whole file
            return f"{self.file}: {self.problem}"
        return f"{self.file}:{self.line}: {self.field}: {self.problem}"


class RetailDataError(ReelcastError):
    """An input file cannot be used as it is; the message lists every problem found."""

    def __init__(self, problems: list[RowProblem], hint: str = "") -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:25])
        more = len(self.problems) - 25
        tail = f"\n  … and {more} more" if more > 0 else ""
        hint = hint or "fix the rows above, or run with --on-bad-rows skip to leave them out"
        super().__init__(f"{len(self.problems)} problem(s) in the input:\n{shown}{tail}\n{hint}")
