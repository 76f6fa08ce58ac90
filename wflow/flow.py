"""``solve_flow``: ∞-curves of maximal slope of a potential, for points and particle measures.

Mathematics: ``docs/theory.md`` §2–4 (the inclusion, Euler/IFGSM, budgets) and §6 (measures);
names and shapes: ``docs/conventions.md``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

from ._fp import dtype_of, float_dtype, round_down
from ._validation import NonFiniteStep, as_points, integer, real, rng_from
from .io import atomic_write, json_dumps
from .measures import ParticleMeasure
from .memory import check_memory
from .norms import Norm, as_norm
from .potentials import FromCallables, Potential
from .schemes import make_scheme
from .slope import metric_slope
from .steps import BALL_ATOL, Ball, StepInfo

__all__ = ["solve_flow", "FlowResult", "time_grid", "check_flow_memory"]

#: particles per block: each block runs through all steps while it sits in cache
DEFAULT_CHUNK_BYTES = 1 << 18
#: the default number of blocks is a multiple of this (:func:`default_chunk_size`)
BLOCK_MULTIPLE = 4
#: T/τ within this (relative) of an integer counts as that integer (:func:`time_grid`)
GRID_RTOL = 1e-9


def default_chunk_size(n: int, d: int, dtype=np.float64) -> int:
    """Particles per block: about ``DEFAULT_CHUNK_BYTES`` of positions, in a number of blocks
    that is a multiple of ``BLOCK_MULTIPLE`` (when there is more than one) and of equal sizes.

    Equal blocks in multiples of 4 share out evenly over 2 or 4 workers: 10⁵ float32 points in
    the plane were 3 blocks of 32768 and one of 1696, so two workers ran 65536 and 34464 rows.
    The split depends on n, d and the dtype only, never on the machine, so the per-block seeds of
    ``selection="random"`` give the same flow everywhere.
    """
    per = max(1, DEFAULT_CHUNK_BYTES // (np.dtype(dtype).itemsize * max(1, d)))
    blocks = -(-n // per)
    if blocks <= 1:
        return max(1, n)
    blocks = -(-blocks // BLOCK_MULTIPLE) * BLOCK_MULTIPLE
    return -(-n // blocks)


def check_flow_memory(n: int, d: int, T: float, tau: float, stride: int = 1) -> float:
    """Estimate the bytes :func:`solve_flow` allocates; raise beyond the memory limit.

    Counts the stored trajectory and energies, 8 B × (⌈T/τ⌉/stride + 2) × n × (d + 1), and the
    time grid with its step arrays, 8 B × 4 × (⌈T/τ⌉ + 1). See ``docs/cli.md``.

    Returns
    -------
    float : the estimate in bytes.

    Raises
    ------
    wflow.memory.MemoryLimitError
        Beyond :func:`wflow.memory.memory_limit`, naming ``stride`` and the step count.
    """
    K_est = 0 if T == 0 else math.ceil(T / tau)
    n_keep = K_est // stride + 2
    nbytes = 8.0 * (4 * (K_est + 1) + n_keep * n * (d + 1))
    check_memory(
        nbytes,
        f"the flow's trajectory ({n_keep}, {n}, {d}), energies and time grid ({K_est + 1} steps)",
        "store fewer times with stride=..., take fewer steps (a larger tau or a smaller T) or fewer particles",
    )
    return nbytes


def time_grid(T: float, tau: float) -> np.ndarray:
    """Grid 0 = t_0 < … < t_K = T with t_k = kτ and a last, shorter step if τ ∤ T.

    K = ⌈T/τ⌉, where a ratio within ``GRID_RTOL`` (relative) of an integer counts as that integer, so
    ``T = steps * tau`` gives exactly ``steps`` steps.
    """
    if T == 0:
        return np.zeros(1)
    ratio = T / tau
    K = max(1, int(round(ratio)) if abs(ratio - round(ratio)) <= GRID_RTOL * max(1.0, ratio) else math.ceil(ratio))
    t = np.arange(K + 1, dtype=float) * tau
    t[-1] = T
    return t


@dataclass
class FlowResult:
    """The computed flow: a piecewise-linear curve for every particle.

    ``positions`` is time-major, (K+1, n, d): a step writes one (n, d) slab, and ``positions[k]``
    is the snapshot μ_{t_k}. :class:`~wflow.superposition.CurveMeasure` stores curves
    curve-major, (m, K+1, d). Use :meth:`trajectory` for one particle's curve and :meth:`at` for
    a snapshot, which read the same on both (``docs/conventions.md``).

    Attributes
    ----------
    times : ndarray, shape (K+1,)
        Stored times (every grid time, or every ``stride``-th plus T).
    positions : ndarray, shape (K+1, n, d)
        Particle positions at ``times``.
    weights : ndarray, shape (n,)
        Particle weights (uniform unless a ParticleMeasure was given).
    potential : Potential
    norm : Norm
        The flow's norm (``str(norm)`` is its name, e.g. ``"linf"``).
    tau : float
        Step size τ (the last step may be shorter; see :func:`time_grid`).
    scheme : str
    budget : float or None
        ε of the budget ball B_ε(center) (None: no budget).
    center : ndarray or None, shape (d,) or (n, d)
    step_info : StepInfo or None
        Per-step records of the scheme, arrays of shape (K, n) (None for Euler).
    stride : int
        Every ``stride``-th grid step was stored.
    """

    times: np.ndarray
    positions: np.ndarray
    weights: np.ndarray
    potential: Potential
    norm: Norm
    tau: float
    scheme: str
    budget: float | None = None
    center: np.ndarray | None = None
    step_info: StepInfo | None = None
    stride: int = 1
    _cache: dict = field(default_factory=dict, repr=False)

    # -- shape facts ------------------------------------------------------------------------
    @property
    def n_particles(self) -> int:
        return self.positions.shape[1]

    @property
    def dim(self) -> int:
        return self.positions.shape[2]

    @property
    def T(self) -> float:
        return float(self.times[-1])

    def trajectory(self, i: int) -> np.ndarray:
        """The stored curve of particle i, shape (K+1, d) (same as ``CurveMeasure.curves[i]``)."""
        i = integer(i, "i")
        if not -self.n_particles <= i < self.n_particles:
            raise ValueError(f"i must index one of the {self.n_particles} particles, got {i}")
        return self.positions[:, i]

    # -- derived quantities (computed once, on first use) ------------------------------------
    def _per_time(self, method: str) -> np.ndarray:
        # one vectorized call per stored time, so per-particle potentials see aligned rows
        return np.stack([np.asarray(getattr(self.potential, method)(X)) for X in self.positions])

    @property
    def energies(self) -> np.ndarray:
        """V(x_i(t_k)), shape (K+1, n)."""
        if "energies" not in self._cache:
            self._cache["energies"] = self._per_time("value")
        return self._cache["energies"]

    @property
    def slopes(self) -> np.ndarray:
        """Metric slope |∂V|(x_i(t_k)), shape (K+1, n) (:func:`wflow.slope.metric_slope`).

        ‖∇V‖_* for C¹ V; exact on kinks of potentials that know their subdifferential; estimated
        by a small minimizing-movement step on other kinks (ReLU networks). Computed on first use.
        """
        if "slopes" not in self._cache:
            if getattr(self.potential, "smooth", True):
                self._cache["slopes"] = self.norm.dual(self._per_time("grad"))
            else:  # one vectorized call per stored time (per-particle potentials see aligned rows)
                self._cache["slopes"] = np.stack([metric_slope(self.potential, X, self.norm)
                                                  for X in self.positions])
        return self._cache["slopes"]

    def energy_curve(self) -> np.ndarray:
        """𝓔(μ_t) = Σ_i w_i V(x_i(t)) at the stored times, shape (K+1,)."""
        return self.energies @ self.weights

    def slope_curve(self) -> np.ndarray:
        """|∂𝓔|(μ_t) = Σ_i w_i |∂V|(x_i(t)) at the stored times, shape (K+1,)."""
        return self.slopes @ self.weights

    # -- interpolation --------------------------------------------------------------------
    def at(self, t: ArrayLike) -> np.ndarray:
        """Piecewise-linear interpolant of the stored positions.

        Parameters
        ----------
        t : float or array of shape (m,)
            Times in [0, T].

        Returns
        -------
        ndarray, shape (n, d) for a scalar t, (m, n, d) for an array.
        """
        ts = np.asarray(t, dtype=float)
        if not np.all(np.isfinite(ts)) or np.any(ts < self.times[0]) or np.any(ts > self.times[-1]):
            raise ValueError(f"t must lie in [0, {self.T:g}], got {t!r}")
        flat = np.atleast_1d(ts)
        k = np.clip(np.searchsorted(self.times, flat, side="right") - 1, 0, max(len(self.times) - 2, 0))
        if len(self.times) == 1:
            out = np.repeat(self.positions[:1], flat.size, axis=0)
        else:
            t0, t1 = self.times[k], self.times[k + 1]
            lam = ((flat - t0) / (t1 - t0))[:, None, None]
            out = (1 - lam) * self.positions[k] + lam * self.positions[k + 1]
            exact = flat == t1  # hit grid times exactly (no round-off from the blend)
            out[exact] = self.positions[k[exact] + 1]
        return out[0] if ts.ndim == 0 else out

    def measure(self, t: float) -> ParticleMeasure:
        """μ_t = Σ_i w_i δ_{x_i(t)} (the interpolant at time t)."""
        return ParticleMeasure(self.at(float(t)), self.weights)

    # -- output ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the run's settings and headline numbers (no trajectories)."""
        E = self.energy_curve()
        return {
            "scheme": self.scheme,
            "norm": str(self.norm),
            "tau": self.tau,
            "T": self.T,
            "n_particles": self.n_particles,
            "dim": self.dim,
            "n_stored_times": int(len(self.times)),
            "budget": self.budget,
            "energy_start": float(E[0]),
            "energy_end": float(E[-1]),
            "potential": repr(self.potential),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write times, positions, weights, energies to an ``.npz`` (settings as JSON inside)."""
        energies = self.energies
        summary = np.array(json_dumps(self.to_dict(), indent=None))

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, times=self.times, positions=self.positions, weights=self.weights,
                                    energies=energies, summary=summary)

        atomic_write(path, write)


def _as_potential(potential) -> Potential:
    if isinstance(potential, Potential):
        return potential
    if callable(getattr(potential, "value", None)) and callable(getattr(potential, "grad", None)):
        return FromCallables(potential.value, potential.grad, dim=getattr(potential, "dim", None))
    raise TypeError(
        f"potential must be a wflow Potential (or have .value and .grad), got {type(potential).__name__}"
    )


def _probe(potential: Potential, X: np.ndarray) -> None:
    """Check V and ∇V on a few rows of x0 before any work: shapes and finiteness."""
    rows = slice(0, min(len(X), 8))
    P = X[rows]
    potential = potential.restrict(rows)
    try:
        v = np.asarray(potential.value(P), dtype=float)
        g = np.asarray(potential.grad(P), dtype=float)
    except ValueError as exc:
        raise ValueError(f"potential cannot be evaluated at x0: {exc}") from exc
    if v.shape != (len(P),):
        raise ValueError(f"potential.value must return shape ({len(P)},) for {P.shape} input, got {v.shape}")
    if g.shape != P.shape:
        raise ValueError(f"potential.grad must return shape {P.shape}, got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("potential.grad returned non-finite values at x0")
    if not np.all(np.isfinite(v)):
        raise ValueError("potential.value returned non-finite values at x0")


def solve_flow(
    potential: Potential | Any,
    x0: ArrayLike | ParticleMeasure,
    T: float,
    tau: float,
    norm: str | float | Norm = "linf",
    scheme: str = "euler",
    budget: float | None = None,
    center: ArrayLike | None = None,
    seed: int | np.random.Generator | None = None,
    *,
    inner: str = "auto",
    selection: str = "canonical",
    stride: int = 1,
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: bool = False,
    dtype=None,
    **scheme_options: Any,
) -> FlowResult:
    """Simulate the ∞-curve of maximal slope of V from x0 on [0, T].

    Solves u'(t) ∈ ∂‖·‖_*(−∇V(u(t))) with a time-stepping scheme of step τ; every particle
    (row of x0) moves independently, so a ParticleMeasure flows as the W∞-curve of maximal
    slope of 𝓔(μ) = ∫V dμ with its weights carried along.

    Parameters
    ----------
    potential : Potential
        V, batched (``value``: (n, d) → (n,), ``grad``: (n, d) → (n, d)).
    x0 : array (d,) or (n, d), or ParticleMeasure
        Initial point(s) or measure.
    T : float
        Final time, T ≥ 0. Since ‖u'‖ ≤ 1, T is also the largest distance travelled.
    tau : float
        Step size τ > 0 (see :func:`time_grid` when τ does not divide T).
    norm : {"linf", "l2", "l1"}, float p ≥ 1 or Norm
        The norm of the flow (steps satisfy ‖x_{k+1} − x_k‖ ≤ τ in it).
    scheme : {"euler", "minmove"}
        ``"euler"``: x_{k+1} = x_k + τ v_k, v_k ∈ ∂‖·‖_*(−∇V(x_k)) (sign descent / IFGSM for ℓ∞).
        ``"minmove"``: x_{k+1} ∈ argmin{V(x): ‖x − x_k‖ ≤ τ} (∩ budget ball).
    budget : float, optional
        ε ≥ 0: iterates are kept in B_ε(center) (projection after each Euler step).
    center : array (d,) or (n, d), optional
        Centre of the budget ball (default: x0).
    seed : int or Generator, optional
        Randomness of ``selection="random"`` and of stochastic inner solvers.
    inner : str
        Inner solver of ``scheme="minmove"`` (``"auto"`` picks one).
    selection : {"canonical", "random"}
        Which steepest direction where it is not unique (see :mod:`wflow.norms`).
    stride : int
        Keep every ``stride``-th grid time (and T) to bound memory for huge ensembles.
    chunk_size : int, optional
        Particles per block (default: about 256 KiB of positions, in equal blocks whose number
        is a multiple of 4; :func:`default_chunk_size`). Blocks run one after the
        other through all steps, which keeps them in cache; results do not depend on it
        (except the random draws of ``selection="random"``, which are seeded per block).
    workers : int, optional
        Threads stepping blocks concurrently. They run in parallel as far as the potential's
        work releases the GIL: large numpy calls and the MLP's numba kernels (one nogil call
        per 1024-row block) do; many short numpy calls serialize. Default: all cores when the
        potential and scheme declare ``thread_safe`` (built-in numpy potentials do; user
        callables and framework models do not) and the potential ``releases_gil`` (an MLP
        loss with the pure-numpy kernel engine does not: two workers were slower than one),
        else 1. Results do not depend on it.
    progress : bool
        Show a tqdm progress bar.
    dtype : numpy.float64 or numpy.float32, optional
        Precision of the positions (default: the potential's ``dtype`` attribute, else
        float64). Step sizes are rounded down to it, budget boxes inward, so ‖x_{k+1} − x_k‖∞ ≤ τ
        and ‖x_k − center‖∞ ≤ budget hold exactly (docs/precision.md).
    **scheme_options
        Passed to the scheme (e.g. ``inner_options`` of minimizing movement).

    Returns
    -------
    FlowResult

    Raises
    ------
    ValueError, TypeError
        For bad arguments (named in the message), before any step is taken.

    Examples
    --------
    >>> import numpy as np, wflow
    >>> V = wflow.potentials.Quadratic(np.eye(2))
    >>> res = wflow.solve_flow(V, [1.0, -0.5], T=0.5, tau=0.1)
    >>> np.round(res.at(0.5)[0], 12)
    array([ 0.5, -0. ])
    """
    # ---- validation: all of it before any work ----
    potential = _as_potential(potential)
    weights = None
    if isinstance(x0, ParticleMeasure):
        X0, weights = np.array(x0.points), np.array(x0.weights)
    else:
        X0 = as_points(x0, "x0")
    dtype = dtype_of(potential) if dtype is None else float_dtype(dtype, "dtype")
    X0 = X0.astype(dtype, copy=False)
    n, d = X0.shape
    if potential.dim is not None and potential.dim != d:
        raise ValueError(f"x0 has dimension {d} but the potential is defined for d = {potential.dim}")
    T = real(T, "T", low=0.0)
    tau = real(tau, "tau", low=0.0, strict=True)
    nrm = as_norm(norm)
    stride = integer(stride, "stride", low=1)
    ball = None
    if budget is not None:
        budget = real(budget, "budget", low=0.0)
        c = X0 if center is None else np.asarray(center, dtype=float)
        given_shape = c.shape
        if c.ndim == 1:
            c = c[None, :]
        if c.ndim != 2 or c.shape[1] != d or c.shape[0] not in (1, n) or not np.all(np.isfinite(c)):
            raise ValueError(f"center must be a finite array of shape ({d},) or ({n}, {d}), got shape {given_shape}")
        c = c[0] if c.shape[0] == 1 and n > 1 else c
        ball = Ball(c.astype(dtype), budget, nrm)
    elif center is not None:
        raise ValueError("center is only used with a budget: pass budget=eps as well")
    if chunk_size is None:
        chunk_size = default_chunk_size(n, d, dtype)
    chunk_size = integer(chunk_size, "chunk_size", low=1)
    options = dict(scheme_options)
    if scheme == "minmove":
        options["inner"] = inner
    elif inner != "auto":
        raise ValueError(f"inner is an option of scheme='minmove', not of scheme={scheme!r}")
    stepper = make_scheme(scheme, nrm, selection, **options)
    rng = rng_from(seed)
    _probe(potential, X0)
    if ball is not None:
        # float32: the inward-rounded box may move points on the sphere by a few float32 ulps
        atol = BALL_ATOL if dtype == np.float64 else 4 * float(np.finfo(dtype).eps) * (float(np.abs(X0).max()) + float(budget or 0.0))
    if ball is not None and budget is not None:
        if nrm.p == np.inf:  # |x0 − c| ≤ ε per coordinate, without the (per-block) box bounds
            gap = np.abs(X0.astype(np.float64, copy=False) - ball.center.astype(np.float64, copy=False))
            inside = bool(np.all(gap <= budget + atol))
        else:
            inside = bool(np.all(np.isclose(ball.project(X0), X0, rtol=0, atol=atol)))
        if not inside:
            raise ValueError("x0 must lie in the budget ball B_budget(center)")

    check_flow_memory(n, d, T, tau, stride)

    # ---- the loop: blocks of particles, each through all steps ----
    grid = time_grid(T, tau)
    K = len(grid) - 1
    # step sizes: exactly τ (not differences of rounded grid times), the last one T − (K−1)τ
    h = np.full(K, tau)
    if K:
        h[-1] = min(tau, T - (K - 1) * tau) if not np.isclose(T, K * tau, rtol=GRID_RTOL, atol=0) else tau
    h = np.array([round_down(v, dtype) for v in h], dtype=dtype) if dtype != np.float64 else h
    keep = np.unique(np.r_[np.arange(0, K + 1, stride), K])
    slot = np.full(K + 1, -1)
    slot[keep] = np.arange(len(keep))
    traj = np.empty((len(keep), n, d), dtype=dtype)
    traj[0] = X0
    n_chunks = -(-n // chunk_size)
    rngs = rng.spawn(n_chunks) if n_chunks > 1 else [rng]
    if workers is None:
        parallel = (potential.thread_safe and getattr(potential, "releases_gil", True)
                    and getattr(stepper, "thread_safe", False))
        workers = min(os.cpu_count() or 1, n_chunks) if parallel else 1
    workers = integer(workers, "workers", low=1)
    bar = None
    if progress and K > 0:
        bar = tqdm(total=K * n_chunks, desc=f"{scheme} flow", unit="block-step", leave=False)
    try:
        block_infos = _step_blocks(stepper, potential, traj[0], h, ball, chunk_size, traj, slot,
                                   rngs=rngs, workers=workers, bar=bar, grid=grid)
    finally:
        if bar is not None:
            bar.close()
    if not np.all(np.isfinite(traj[-1])):
        _raise_nonfinite(potential, traj, grid[keep])
    v_end = potential.value(traj[-1])
    if not np.all(np.isfinite(v_end)):
        i = int(np.flatnonzero(~np.isfinite(v_end))[0])
        raise ValueError(f"potential.value is non-finite at the end of the flow (t = {T:g}) for particle {i} "
                         f"(x = {np.array2string(traj[-1, i], precision=6)})")
    step_info = StepInfo.stack(block_infos) if block_infos and block_infos[0] else None
    return FlowResult(
        times=grid[keep],
        positions=traj,
        weights=np.full(n, 1.0 / n) if weights is None else weights,
        potential=potential,
        norm=nrm,
        tau=tau,
        scheme=scheme,
        budget=budget,
        center=None if ball is None else ball.center,
        step_info=step_info,
        stride=stride,
    )


def _step_blocks(stepper, potential: Potential, x0: np.ndarray, h, ball: Ball | None, chunk_size: int,
                 store: np.ndarray, slot, *, rngs=None, workers: int = 1, bar=None,
                 grid: np.ndarray | None = None) -> list[list[StepInfo]]:
    """The flow solver's loop: blocks of particles, each through all K = len(h) steps.

    Shared by :func:`solve_flow` and the validated-once inner loop of adversarial training
    (:func:`wflow.adversarial.attacks.linf_flow_steps`); it validates nothing.

    Parameters
    ----------
    stepper : scheme
        ``stepper.step(potential, X, tau, ball, out, rng)`` (:mod:`wflow.steps`).
    potential : Potential
        Restricted to each block's rows when there is more than one block.
    x0 : ndarray, shape (n, d)
        Start (only read).
    h : ndarray or sequence, shape (K,)
        Step sizes, in the positions' dtype.
    ball : Ball or None
        The budget ball (per block: :meth:`Ball.rows`).
    chunk_size : int
        Particles per block (the last block may be shorter).
    store : ndarray, shape (m, n, d)
        Step k (1 ≤ k ≤ K) ends in ``store[slot[k]]`` when ``slot[k] >= 0``; x0 must not overlap
        these. Unstored steps alternate between one scratch block and the next stored step's
        slab, so that the step before a stored one writes into scratch.
    slot : sequence of int, length K + 1, with ``slot[K] >= 0``
    rngs : list of Generator, optional
        One per block (None: the scheme gets ``rng=None``).
    workers : int
        Threads stepping blocks concurrently (1: in order, no pool).
    bar : tqdm, optional
        Advanced by one per block-step.
    grid : ndarray, shape (K+1,), optional
        The time grid, for the error message of a non-finite step.

    Returns
    -------
    list (one per block) of lists of the StepInfo records the scheme returned.
    """
    n = len(x0)
    K = len(h)
    # float64: Python floats (cheaper in ufuncs, same values); float32: numpy float32 scalars
    taus = h.tolist() if isinstance(h, np.ndarray) and h.dtype == np.float64 else list(h)
    # where step k writes: its stored slab, or (unstored, counting back from the next stored
    # step j) that slab when j − k is even and the scratch block when it is odd
    where = [-1] * (K + 1)
    target, gap = -1, 0
    for k in range(K, 0, -1):
        if slot[k] >= 0:
            target, gap = int(slot[k]), 0
            where[k] = target
        else:
            gap += 1
            where[k] = -1 if gap % 2 else target
    n_chunks = -(-n // chunk_size)
    block_infos: list[list[StepInfo]] = [[] for _ in range(n_chunks)]

    def run_block(b: int) -> None:
        if n_chunks > 1:
            sl = slice(b * chunk_size, min(n, (b + 1) * chunk_size))
            bball = ball.rows(sl) if ball is not None else None
            pot = potential.restrict(sl)
        else:
            sl, bball, pot = slice(0, n), ball, potential
        rng = rngs[b] if rngs is not None else None
        infos = block_infos[b]
        x = x0[sl]
        scratch = None
        for k in range(K):
            s = where[k + 1]
            if s >= 0:
                dest = store[s, sl]
            else:
                if scratch is None:
                    scratch = np.empty_like(x)
                dest = scratch
            try:
                info = stepper.step(pot, x, taus[k], bball, dest, rng)
            except NonFiniteStep as exc:
                i = sl.start + int(exc.rows[0])
                when = f" (t = {grid[k]:g} → {grid[k + 1]:g})" if grid is not None else ""
                raise ValueError(f"{exc} at step {k + 1}{when}, particle {i} "
                                 f"(x = {np.array2string(x[exc.rows[0]], precision=6)}); "
                                 f"{len(exc.rows)} particle(s) affected") from None
            if info is not None:
                infos.append(info)
            x = dest
            if bar is not None:
                bar.update(1)

    if workers == 1 or n_chunks <= 1:
        for b in range(n_chunks):
            run_block(b)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run_block, range(n_chunks)))
    return block_infos


def _raise_nonfinite(potential: Potential, traj: np.ndarray, times: np.ndarray) -> None:
    """Name the first stored time and particle where the positions stopped being finite, and why."""
    finite = np.all(np.isfinite(traj), axis=2)  # (K+1, n)
    k = int(np.argmax(~np.all(finite, axis=1)))
    i = int(np.flatnonzero(~finite[k])[0])
    last = traj[k - 1, i] if k > 0 else traj[0, i]
    where = f"particle {i}, between stored times {times[max(k - 1, 0)]:g} and {times[k]:g}"
    if np.max(np.abs(last)) > 1e300:
        raise ValueError(f"the positions overflowed the float64 range ({where}; |x| reached "
                         f"{np.max(np.abs(last)):.3g}): rescale the problem or shorten T")
    g = potential.grad(last[None])
    if not np.all(np.isfinite(g)):
        raise ValueError(f"potential.grad returned non-finite values during the flow ({where}, "
                         f"x = {np.array2string(last, precision=6)})")
    raise ValueError(f"the positions became non-finite during the flow ({where})")

