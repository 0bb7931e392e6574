"""The exception tree: every failure a caller can act on has its own type.

``TerritoryError`` is the root. ``InvalidInputError`` is also a ``ValueError`` so that code
written against plain Python conventions still catches it. Messages name the row, the field,
the value and the fix, e.g. ``Account 'A-1032' (row 1034): potential=-2.0; expected >= 0.``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DataQualityWarning",
    "InfeasibleError",
    "InvalidInputError",
    "NoSolutionError",
    "Problem",
    "SolverError",
    "TerritoryError",
]

#: How many offending rows a message lists before it says "... and N more".
MAX_LISTED = 20


@dataclass(frozen=True)
class Problem:
    """One offending cell of an input table.

    ``row`` is the row label as the source shows it (the spreadsheet row number for CSV and
    Excel, the feature id for GeoPackage/GeoJSON, the index label for a DataFrame), ``id`` the
    record's id when it has one, ``field`` the column (after column mapping) and ``value``
    the offending value as read.
    """

    row: int | str | None
    id: str | None
    field: str
    value: object
    message: str

    def describe(self, kind: str = "Row") -> str:
        """One line for an error message."""
        where = []
        if self.id is not None:
            where.append(f"{kind} {self.id!r}")
        if self.row is not None:
            where.append(f"(row {self.row})" if where else f"row {self.row}")
        head = " ".join(where) if where else kind
        return f"{head}: {self.field}={self.value!r}; {self.message}"


class TerritoryError(Exception):
    """Root of all errors raised by territory-planner."""


class InvalidInputError(TerritoryError, ValueError):
    """The input cannot be used as given; the message says which rows and fields, and how to fix.

    Attributes
    ----------
    problems:
        Every offending cell found (not only the first), so a caller can show them all.
    """

    def __init__(
        self,
        summary: str,
        problems: Sequence[Problem] = (),
        *,
        kind: str = "Row",
        hint: str | None = None,
    ) -> None:
        self.summary = summary
        self.problems = tuple(problems)
        self.hint = hint
        lines = [summary]
        for p in self.problems[:MAX_LISTED]:
            lines.append("  " + p.describe(kind))
        if len(self.problems) > MAX_LISTED:
            lines.append(f"  ... and {len(self.problems) - MAX_LISTED} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (used by the CLI and the service)."""
        return {
            "code": 2,
            "error": "invalid_input",
            "message": str(self),
            "problems": [
                {"row": p.row, "id": p.id, "field": p.field, "value": _jsonable(p.value),
                 "message": p.message}
                for p in self.problems
            ],
        }


class InfeasibleError(TerritoryError):
    """The constraints cannot all hold (e.g. a tolerance no assignment can meet).

    Solvers prefer returning a result flagged infeasible; this is raised only where no useful
    partial answer exists.
    """


class NoSolutionError(TerritoryError):
    """The solver found no solution within its limits (not proven infeasible)."""


class SolverError(TerritoryError, RuntimeError):
    """A solver failed internally; a bug report with the input is welcome."""


class DataQualityWarning(UserWarning):
    """Something in the input was repaired or looks suspicious; the plan is still valid."""


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return str(value)
