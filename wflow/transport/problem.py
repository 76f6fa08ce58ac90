"""Problems: validated pairs of measures, their supports, coincident atoms merged and split back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..measures import WEIGHT_SUM_TOL, ParticleMeasure, as_measure
from ..norms import parse_norm
from .geometry import check_range
from .result import fit_marginals

__all__ = ["Problem", "MASS_TOL"]

#: masses below this are round-off (equal to the tolerance on Σ w_i of a ParticleMeasure)
MASS_TOL = WEIGHT_SUM_TOL


def pair(mu, nu, norm):
    q = parse_norm(norm)
    mu = as_measure(mu, "mu")
    nu = as_measure(nu, "nu")
    if mu.dim != nu.dim:
        raise ValueError(f"nu must have the dimension of mu (d = {mu.dim}), got d = {nu.dim}")
    return mu, nu, q


def support(m: ParticleMeasure):
    """(indices, points, weights) of the atoms of positive weight.

    When every atom has positive weight, indices is None (the identity) and the measure's own
    (read-only) arrays are returned: no copies of 10⁶-atom measures.
    """
    pos = m.weights > 0
    if pos.all():
        return None, m.points, m.weights
    idx = np.flatnonzero(pos)
    return idx, m.points[idx], m.weights[idx]


def original(idx: np.ndarray | None, local: np.ndarray) -> np.ndarray:
    """Indices into the measure as passed in, from indices into its support (``support``)."""
    return local if idx is None else idx[local]


def uniform(w: np.ndarray) -> bool:
    return bool(np.all(w == w[0]))


def merge_coincident(P: np.ndarray, w: np.ndarray):
    """Merge atoms at the same point (exact equality). Returns (points, weights, group) or None.

    ``group[i]`` is the merged atom of atom i; None when all atoms are distinct (no copy made).
    """
    n = len(P)
    if n < 2:
        return None
    Pc = np.ascontiguousarray(P)
    view = Pc.view(np.dtype((np.void, Pc.dtype.itemsize * Pc.shape[1]))).reshape(-1)
    # −0.0 and 0.0 are the same point: normalize before hashing the bytes
    if np.any(Pc == 0):
        Pc = Pc + 0.0
        view = Pc.view(np.dtype((np.void, Pc.dtype.itemsize * Pc.shape[1]))).reshape(-1)
    _, first, inv = np.unique(view, return_index=True, return_inverse=True)
    if len(first) == n:
        return None
    inv = inv.reshape(-1)
    W = np.bincount(inv, weights=w, minlength=len(first))
    return P[first], W, inv


@dataclass
class Problem:
    """μ, ν restricted to their supports, coincident atoms merged.

    Attributes
    ----------
    mu, nu : the measures as passed in
    q : ground norm exponent
    X, a, Y, b : merged support points and weights (a, b sum to 1 up to round-off)
    ix, iy : support indices into the measures as passed in (None: all atoms)
    gx, gy : merged atom of every support atom (None: nothing merged)
    """

    mu: ParticleMeasure
    nu: ParticleMeasure
    q: float
    X: np.ndarray
    a: np.ndarray
    Y: np.ndarray
    b: np.ndarray
    ix: np.ndarray | None
    iy: np.ndarray | None
    wx: np.ndarray
    wy: np.ndarray
    gx: np.ndarray | None
    gy: np.ndarray | None

    @classmethod
    def build(cls, mu, nu, norm, *, merge: bool = True) -> Problem:
        mu, nu, q = pair(mu, nu, norm)
        ix, X, a = support(mu)
        iy, Y, b = support(nu)
        check_range(X, Y, q)
        gx = gy = None
        wx, wy = a, b
        if merge and X.shape[1] > 1:  # 1-D quantile couplings handle ties natively
            r = merge_coincident(X, a)
            if r is not None:
                X, a, gx = r
            r = merge_coincident(Y, b)
            if r is not None:
                Y, b, gy = r
        return cls(mu, nu, q, X, a, Y, b, ix, iy, wx, wy, gx, gy)

    @property
    def merged(self) -> bool:
        return self.gx is not None or self.gy is not None

    def split(self, rows, cols, mass):
        """A plan between the merged atoms → a plan between the atoms as passed in.

        Every merged entry (I, J, m) is split among the members of I and J with the
        north-west-corner rule inside each group (members and entries laid out as mass
        intervals); all members of a group sit at one point, so costs are unchanged, and the
        number of entries grows by at most the number of merged atoms.
        """
        rows = np.asarray(rows, dtype=np.intp)
        cols = np.asarray(cols, dtype=np.intp)
        mass = np.asarray(mass, dtype=float)
        if self.gx is not None:
            members, ent, m = _split_groups(self.gx, self.wx, rows, mass)
            rows, cols, mass = members, cols[ent], m
        if self.gy is not None:
            members, ent, m = _split_groups(self.gy, self.wy, cols, mass)
            rows, cols, mass = rows[ent], members, m
        if self.merged:
            mass = fit_marginals(rows, cols, mass, self.wx, self.wy, len(self.wx), len(self.wy))
        return original(self.ix, rows), original(self.iy, cols), mass


def _split_groups(group: np.ndarray, w: np.ndarray, ent_group: np.ndarray, ent_mass: np.ndarray):
    """Pair members (group, weight w) with entries (ent_group, ent_mass) inside each group.

    Returns (member index, entry index, mass): the monotone (north-west corner) coupling of the
    members of each group with the entries of that group, laid out on consecutive mass
    intervals normalized to the group's total (fractions end exactly at 1).
    """
    om = np.argsort(group, kind="stable")
    oe = np.argsort(ent_group, kind="stable")
    gm, ge = group[om], ent_group[oe]
    G = int(max(gm.max(initial=-1), ge.max(initial=-1))) + 1
    fm = _group_fractions(gm, w[om], G)
    fe = _group_fractions(ge, ent_mass[oe], G)
    tot = np.bincount(ge, weights=ent_mass[oe], minlength=G)
    # pieces of round-off width (≤ 1e-13 of the group) are dropped; :meth:`Problem.split`
    # then fits the masses back to both marginals on the remaining support
    allg = np.r_[gm, ge]
    allf = np.r_[fm, fe]
    is_m = np.r_[np.ones(len(gm), bool), np.zeros(len(ge), bool)]
    o = np.lexsort((~is_m, allf, allg))
    g_s, f_s, m_s = allg[o], allf[o], is_m[o]
    # f_s sorted within groups; pieces end at every breakpoint; a piece belongs to the next
    # member end and the next entry end at or after it
    pos = np.arange(len(o))
    nxt_m = np.where(m_s, pos, len(o))
    nxt_m = np.minimum.accumulate(nxt_m[::-1])[::-1]
    nxt_e = np.where(~m_s, pos, len(o))
    nxt_e = np.minimum.accumulate(nxt_e[::-1])[::-1]
    start = np.r_[True, g_s[1:] != g_s[:-1]]
    prev = np.r_[0.0, f_s[:-1]]
    prev[start] = 0.0
    width = f_s - prev
    keep = (width > 1e-13) & (nxt_m < len(o)) & (nxt_e < len(o))
    keep &= g_s[np.minimum(nxt_m, len(o) - 1)] == g_s
    keep &= g_s[np.minimum(nxt_e, len(o) - 1)] == g_s
    mi = o[nxt_m[keep]]  # index into concatenated arrays: members first
    ei = o[nxt_e[keep]] - len(gm)
    mass = width[keep] * tot[g_s[keep]]
    return om[mi], oe[ei], mass


def _group_fractions(g: np.ndarray, w: np.ndarray, G: int) -> np.ndarray:
    """Cumulative mass within each group / group total, for items sorted by group (last = 1)."""
    if len(g) == 0:
        return np.zeros(0)
    c = np.cumsum(w)
    counts = np.bincount(g, minlength=G)
    end = np.cumsum(counts) - 1
    start = end - counts + 1
    base = np.r_[0.0, c][start[g]]
    tot = (c[end] - np.r_[0.0, c][start])[g]
    # a running sum restarted per group keeps the relative error per group small
    f = np.where(tot > 0, (c - base) / np.where(tot > 0, tot, 1.0), 1.0)
    last = np.zeros(len(g), bool)
    last[end[counts > 0]] = True
    f[last] = 1.0
    return np.minimum(f, 1.0)
