"""The one report type of :mod:`wflow.verify`.

Every check returns a :class:`CheckReport`: the measured value, the tolerance it is compared
with, the formula that produced the tolerance (derivations: ``docs/verification.md``), the
worst offender, and sub-reports when the check is made of several. ``passed`` is None for a
measurement that is reported but is not a theorem check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CheckReport", "jsonable"]


def jsonable(x):
    """JSON-safe copy: arrays → lists, numpy scalars → Python, NaN/inf → None."""
    if isinstance(x, CheckReport):
        return x.to_dict()
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


@dataclass
class CheckReport:
    """Result of one check (or of a list of checks, in ``checks``).

    Attributes
    ----------
    name : str
        Identifier, e.g. ``"maximal_slope_mass"``.
    passed : bool or None
        ``measured <relation> tolerance`` (for a composite: every sub-check passed); None for
        a measurement that is not a pass/fail check.
    measured : float
        The measured figure (for per-segment rules: at the worst offender).
    tolerance : float or None
        The bound it is compared with (at the worst offender).
    relation : {"<=", ">="}
    formula : str
        How the tolerance was obtained (see ``docs/verification.md``).
    worst : dict
        The worst offender (curve index, time pair, …): where measured − tolerance is largest.
    details : dict
        Further measured numbers.
    checks : list of CheckReport
        Sub-reports of a composite report.
    """

    name: str
    passed: bool | None
    measured: float
    tolerance: float | None = None
    relation: str = "<="
    formula: str = ""
    worst: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    checks: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.passed)

    def __getitem__(self, name: str) -> "CheckReport":
        """The sub-report called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no sub-check named {name!r}; have {[c.name for c in self.checks]}")

    def get(self, name: str, default=None):
        """The sub-report called ``name`` (``default`` when absent)."""
        try:
            return self[name]
        except KeyError:
            return default

    @property
    def failed(self) -> list:
        """Names of the failing sub-checks (measurements excluded)."""
        return [c.name for c in self.checks if c.passed is False]

    def to_dict(self) -> dict:
        """A JSON-ready dict (NaN → None, arrays → lists)."""
        return {
            "name": self.name,
            "passed": None if self.passed is None else bool(self.passed),
            "measured": jsonable(self.measured),
            "tolerance": jsonable(self.tolerance),
            "relation": self.relation,
            "formula": self.formula,
            "worst": jsonable(self.worst),
            "details": jsonable(self.details),
            "checks": [c.to_dict() for c in self.checks],
        }

    def rows(self, prefix: str = "") -> list:
        """Flattened (name, report) pairs of this report and its sub-reports (leaves only)."""
        if not self.checks:
            return [(prefix + self.name, self)]
        out = []
        for c in self.checks:
            out += c.rows(prefix + self.name + "/")
        return out

    def table(self, leaves: bool = True) -> str:
        """Markdown table: check | measured | relation | tolerance | result.

        ``leaves=False``: one row per direct sub-report instead of every leaf.
        """
        lines = ["| check | measured | | tolerance | result |", "|---|---:|:-:|---:|:-:|"]
        rows = self.rows() if leaves else [(c.name, c) for c in self.checks]
        for name, r in rows:
            tol = "—" if r.tolerance is None else f"{r.tolerance:.4g}"
            res = "measured" if r.passed is None else ("PASS" if r.passed else "FAIL")
            lines.append(f"| {name} | {r.measured:.4g} | {r.relation} | {tol} | {res} |")
        return "\n".join(lines)


def compare(measured: float, tolerance: float, relation: str = "<=") -> bool:
    """``measured <relation> tolerance``; NaN never passes."""
    m, t = float(measured), float(tolerance)
    if relation == "<=":
        ok = m <= t
    elif relation == ">=":
        ok = m >= t
    else:
        raise ValueError(f"relation must be '<=' or '>=', got {relation!r}")
    return bool(ok and math.isfinite(m))
