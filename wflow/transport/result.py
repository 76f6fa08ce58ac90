"""Outputs: sparse couplings and the result of a transport solve (value, plan, certificate)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..norms import Norm, as_norm
from .geometry import _pair_dist

__all__ = ["Coupling", "TransportResult", "MARGINAL_TOL"]

#: marginals of a returned coupling match the measures to this absolute tolerance
MARGINAL_TOL = 1e-11
#: plan entries per block when :func:`make_coupling` measures the largest cost
_VALUE_BLOCK = 1 << 17


@dataclass(frozen=True)
class Coupling:
    """A sparse transport plan γ between μ (n atoms) and ν (m atoms).

    Attributes
    ----------
    rows, cols : ndarray (k,), int
        Atom indices of μ and ν (as passed in, zero-weight atoms included).
    mass : ndarray (k,), float
        γ_{rows[l], cols[l]} > 0.
    shape : (n, m)
    value : float
        max{‖x_i − y_j‖ : γ_ij > 0}, the W∞ cost the plan achieves.
    norm : Norm
        The ground norm used for ``value`` (numbers and names are coerced by ``as_norm``).
    """

    rows: np.ndarray
    cols: np.ndarray
    mass: np.ndarray
    shape: tuple[int, int]
    value: float
    norm: Norm = field(default_factory=lambda: Norm(np.inf))

    def __post_init__(self):
        object.__setattr__(self, "norm", as_norm(self.norm))

    @property
    def nnz(self) -> int:
        return int(self.mass.size)

    def to_dense(self) -> np.ndarray:
        """The plan as a dense (n, m) array."""
        out = np.zeros(self.shape)
        np.add.at(out, (self.rows, self.cols), self.mass)
        return out

    def to_sparse(self):
        """The plan as a ``scipy.sparse.coo_array`` of shape (n, m)."""
        import scipy.sparse as sp

        return sp.coo_array((self.mass, (self.rows, self.cols)), shape=self.shape)

    def marginals(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column sums, shapes (n,) and (m,)."""
        return (np.bincount(self.rows, self.mass, minlength=self.shape[0]),
                np.bincount(self.cols, self.mass, minlength=self.shape[1]))

    def to_dict(self) -> dict:
        return {"rows": self.rows.tolist(), "cols": self.cols.tolist(), "mass": self.mass.tolist(),
                "shape": list(self.shape), "value": _json_float(self.value), "norm": self.norm.name}


def _json_float(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class TransportResult:
    """Result of :func:`solve_winf` / :func:`solve_wasserstein`.

    Attributes
    ----------
    value : float
        W∞ (p = ∞) or W_p itself (not W_p^p).
    coupling : Coupling
        An optimal plan (sparse), verified: marginals within ``MARGINAL_TOL`` and, for W∞,
        ``coupling.value == value``.
    p : float
        Order of the distance (``inf`` for W∞).
    norm : Norm
        Ground norm.
    method : str
        Solver: ``"1d-quantiles"``, ``"bottleneck"``, ``"maxflow"``, ``"identical"``,
        ``"network-simplex"``.
    lower_bound : float
        The a priori certified lower bound the search started from (nearest neighbours,
        projections); for W_p the dual objective is not reported (NaN).
    threshold : float
        W∞: the threshold at which feasibility was certified (= value); every smaller distance
        was certified infeasible (Hall violators or failed max-flows). W_p: NaN.
    n_tests : int
        Threshold feasibility tests (max-flow runs) of the search.
    n_merged : tuple (int, int)
        Atoms of μ and ν after merging coincident atoms (the size of the solved problem).
    info : dict
        Extra JSON-safe numbers (e.g. graph sizes).
    """

    value: float
    coupling: Coupling
    p: float
    norm: Norm
    method: str
    lower_bound: float = float("nan")
    threshold: float = float("nan")
    n_tests: int = 0
    n_merged: tuple = (0, 0)
    info: dict = field(default_factory=dict)

    def to_dict(self, *, plan: bool = False) -> dict:
        """JSON-safe summary (NaN → None); ``plan=True`` includes the coupling's entries."""
        out = {
            "value": _json_float(self.value),
            "p": None if self.p == np.inf else float(self.p),
            "norm": self.norm.name,
            "method": self.method,
            "lower_bound": _json_float(self.lower_bound),
            "threshold": _json_float(self.threshold),
            "n_tests": int(self.n_tests),
            "n_merged": [int(v) for v in self.n_merged],
            "plan_entries": self.coupling.nnz,
            "info": {k: (_json_float(v) if isinstance(v, float) else v) for k, v in self.info.items()},
        }
        if plan:
            out["coupling"] = self.coupling.to_dict()
        return out


def fit_marginals(r, c, mass, a, b, n, m, sweeps: int = 40):
    """Proportional fitting of positive masses on a fixed support to the marginals a, b.

    Starts from masses within round-off of a plan (e.g. scaled integer flows) and stops when
    both marginals agree to 2 ulps of 1 (or after ``sweeps`` sweeps).
    """
    mass = np.asarray(mass, dtype=float).copy()
    for _ in range(sweeps):
        rs = np.bincount(r, mass, n)
        mass *= (a / np.where(rs > 0, rs, 1.0))[r]
        cs = np.bincount(c, mass, m)
        mass *= (b / np.where(cs > 0, cs, 1.0))[c]
        if np.abs(np.bincount(r, mass, n) - a).max(initial=0.0) <= 4.5e-16:
            break
    return mass


def make_coupling(mu, nu, rows, cols, mass, q, *, check_value: float | None = None) -> Coupling:
    """Build and verify a coupling between the measures as passed in."""
    rows = np.asarray(rows, dtype=np.intp)
    cols = np.asarray(cols, dtype=np.intp)
    mass = np.asarray(mass, dtype=float)
    keep = mass > 0
    if not keep.all():
        rows, cols, mass = rows[keep], cols[keep], mass[keep]
    # the coupling owns its arrays: read-only ones (a measure's weights passed through) are copied
    rows, cols, mass = (e if e.flags.writeable else e.copy() for e in (rows, cols, mass))
    # the largest cost, block by block (cache-sized temporaries, no 10⁶-entry distance array)
    maxima = [_pair_dist(mu.points, nu.points, rows[k:k + _VALUE_BLOCK], cols[k:k + _VALUE_BLOCK], q).max()
              for k in range(0, len(rows), _VALUE_BLOCK)]
    value = float(np.max(maxima)) if maxima else 0.0
    c = Coupling(rows, cols, mass, (mu.n, nu.n), value, Norm(q))
    r, s = c.marginals()
    r -= mu.weights
    s -= nu.weights
    err = max(np.abs(r, out=r).max(), np.abs(s, out=s).max())
    if not err <= MARGINAL_TOL:
        raise RuntimeError(f"internal error: coupling marginals off by {err:.3g} (> {MARGINAL_TOL:g})")
    if check_value is not None and value != check_value:
        raise RuntimeError(f"internal error: coupling achieves {value!r}, expected {check_value!r}")
    return c
