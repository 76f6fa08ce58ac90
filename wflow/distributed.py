"""The same flows, attacks and conflict graphs on dask arrays and dask.distributed clusters.

Particles of a potential flow do not interact and attacks are independent per data point, so
the work splits into blocks of rows. Every block runs the single-process kernels unchanged
(:func:`wflow.solve_flow`, :func:`wflow.adversarial.fgsm` / :func:`~wflow.adversarial.ifgsm`)
and returns only what was asked for; curves over the whole ensemble are dask reductions of
per-block partial sums (weighted energy and slope curves) or maxima (labelled W∞ bounds).
Without a client the threaded scheduler runs the graph; with a ``dask.distributed.Client``
the model or potential is scattered to the workers once. Dask is optional: this module
imports it on first use (``pip install "wflow[dask]"``). Theory, guarantees and measured
figures: ``docs/distributed.md``.
"""

from __future__ import annotations

import math
import sys
import uuid
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_flow
from scipy.spatial.distance import cdist

from . import flow as _flow
from ._validation import as_points, integer, real, rng_from
from .adversarial import attacks as _attacks
from .adversarial import distributional as _distributional
from .adversarial.attacks import attack_potential
from .adversarial.optimal_risk import ConflictGraph
from .measures import WEIGHT_SUM_TOL, ParticleMeasure, probability_weights
from .memory import check_memory
from .norms import Norm, as_norm

__all__ = [
    "solve_flow",
    "DaskFlowResult",
    "fgsm",
    "ifgsm",
    "distributional_attack",
    "DaskAttackFlow",
    "conflict_edges",
    "ConflictEdges",
    "optimal_adversarial_risk",
    "as_particles",
    "compute",
    "connect",
    "solve_flow_on",
    "FLOW_OUTPUTS",
]

#: what a distributed flow can keep (see :func:`solve_flow`)
FLOW_OUTPUTS = ("positions", "final", "energies", "energy_curve", "slope_curve", "step_bound", "winf_bound")
#: target bytes of one block's stored trajectory (the default chunk size follows from it)
DEFAULT_BLOCK_BYTES = 64 << 20


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError(
            f'wflow.distributed needs dask: pip install "wflow[dask]" ({exc})'
        ) from None
    return dask, da


def _default_client():
    """The registered ``dask.distributed`` client, or None (threaded scheduler)."""
    if "distributed" not in sys.modules:  # no client can exist: skip importing distributed
        return None
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover
        return None
    try:
        return default_client()
    except ValueError:
        return None


def connect(address: str, timeout: float = 10.0):
    """A ``dask.distributed.Client`` for the scheduler at ``address`` (clear error if unreachable).

    Raises
    ------
    ConnectionError
        When no scheduler answers at ``address`` within ``timeout`` seconds.
    """
    if not isinstance(address, str) or not address.strip():
        raise TypeError(f"address must be a scheduler address such as 'tcp://host:8786', got {address!r}")
    timeout = real(timeout, "timeout", low=0.0, strict=True)
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError(f'a scheduler address needs dask.distributed: pip install "wflow[dask]" ({exc})') from None
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"cannot reach the dask scheduler at {address!r} within {timeout:g} s: {exc}"
        ) from None


def _ship(obj, client):
    """Put ``obj`` into the graph once: scattered to every worker, or a single delayed key."""
    dask, _ = _dask()
    if client is not None:
        return client.scatter(obj, broadcast=True, hash=False)
    return dask.delayed(obj, name=f"wflow-shipped-{type(obj).__name__}-{uuid.uuid4().hex}", traverse=False)


def _row_chunks(n: int, d: int, per_row_bytes: int, chunks) -> tuple[int, ...] | int:
    if chunks is None:
        return max(1024, DEFAULT_BLOCK_BYTES // max(1, per_row_bytes))
    return chunks


def as_particles(x, chunks=None, name: str = "x0"):
    """A float64 dask array of shape (n, d) chunked along rows only.

    Parameters
    ----------
    x : dask array, numpy array or array-like, shape (n, d) or (d,)
    chunks : int or tuple of int, optional
        Rows per block (default: keep a dask array's row chunks; 2**16 rows for numpy input).
    name : str
        Argument name in error messages.
    """
    _, da = _dask()
    if isinstance(x, da.Array):
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] == 0 or any(math.isnan(s) for s in x.shape):
            raise ValueError(f"{name} must be a dask array of known shape (n, d), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise TypeError(f"{name} must be a real numeric array, got dtype {x.dtype}")
        x = x.astype(float)
        return x.rechunk({0: chunks if chunks is not None else x.chunks[0], 1: -1})
    X = as_points(x, name)
    return da.from_array(X, chunks=(chunks if chunks is not None else 1 << 16, -1), name=False)


def _row_slices(chunks: tuple[int, ...]) -> list[slice]:
    stops = np.cumsum(chunks)
    return [slice(int(s - c), int(s)) for s, c in zip(stops, chunks)]


def _blocks(a) -> list:
    """Delayed row blocks of a dask array chunked along axis 0 only."""
    return list(a.to_delayed().reshape(-1))


def _weights(weights, n: int, row_chunks, name: str = "weights"):
    """Validated weights as a dask array with the particles' row chunks (None: uniform 1/n)."""
    dask, da = _dask()
    if weights is None:
        return da.full(n, 1.0 / n, chunks=(row_chunks,))
    if isinstance(weights, da.Array):
        if weights.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match the particles, got {weights.shape}")
        w = weights.astype(float).rechunk((row_chunks,))
        total, wmin, finite = dask.compute(w.sum(), w.min(), da.isfinite(w).all())
        if not finite:
            raise ValueError(f"{name} contains NaN or infinite values")
        if wmin < 0:
            raise ValueError(f"{name} must be >= 0, got minimum {wmin:g}")
        if abs(total - 1.0) > WEIGHT_SUM_TOL:
            raise ValueError(f"{name} must sum to 1 within {WEIGHT_SUM_TOL:g}, got {total!r}")
        return w
    return da.from_array(probability_weights(weights, n), chunks=(row_chunks,), name=False)


def _aligned(a, row_chunks, n: int, name: str):
    """Per-row data (labels, centres) as a dask array with the particles' row chunks."""
    _, da = _dask()
    if not isinstance(a, da.Array):
        a = np.asarray(a)
    if a.shape[:1] != (n,):
        raise ValueError(f"{name} must have {n} rows (one per particle), got shape {a.shape}")
    if isinstance(a, da.Array):
        return a.rechunk({0: row_chunks, **{i: -1 for i in range(1, a.ndim)}})
    return da.from_array(a, chunks=(row_chunks,) + a.shape[1:], name=False)


# ------------------------------------------------------------------------------------------------
# flows
# ------------------------------------------------------------------------------------------------
@dataclass
class DaskFlowResult:
    """A flow computed blockwise: dask arrays until :meth:`compute`, numpy arrays after.

    Only the outputs named in ``keep`` are present (others are None). Reductions over the
    particles are arrays, not methods as in :class:`wflow.FlowResult`.

    Attributes
    ----------
    times : ndarray, shape (K+1,)
        Stored times (every ``stride``-th grid time and T).
    weights : array, shape (n,)
    norm : Norm
    tau : float
    scheme : str
    stride : int
    budget : float or None
    positions : array, shape (K+1, n, d) or None
    final : array, shape (n, d) or None
        Positions at T.
    energies : array, shape (K+1, n) or None
        V(x_i(t_k)).
    energy_curve : array, shape (K+1,) or None
        𝓔(μ_t) = Σ_i w_i V(x_i(t)).
    slope_curve : array, shape (K+1,) or None
        |∂𝓔|(μ_t) = Σ_i w_i ‖∇V(x_i(t))‖_*.
    step_bound : array, shape (K,) or None
        max_i ‖x_i(t_{k+1}) − x_i(t_k)‖ ≥ W∞(μ_{t_k}, μ_{t_{k+1}}) (labelled bound, consecutive times).
    winf_bound : array, shape (K+1, K+1) or None
        max_i ‖x_i(t_l) − x_i(t_k)‖ for every pair of stored times.
    """

    times: np.ndarray
    weights: object
    norm: Norm
    tau: float
    scheme: str
    stride: int
    budget: float | None = None
    positions: object = None
    final: object = None
    energies: object = None
    energy_curve: object = None
    slope_curve: object = None
    step_bound: object = None
    winf_bound: object = None
    _arrays: tuple = field(default=FLOW_OUTPUTS, repr=False)

    @property
    def n_particles(self) -> int:
        return int(self.weights.shape[0])

    @property
    def T(self) -> float:
        return float(self.times[-1])

    @property
    def is_lazy(self) -> bool:
        """True while any kept output is still a dask array."""
        _, da = _dask()
        return any(isinstance(getattr(self, k), da.Array) for k in FLOW_OUTPUTS)

    def compute(self, *, progress: bool = False, scheduler=None) -> "DaskFlowResult":
        """All kept outputs in one pass over the blocks (numpy arrays).

        Computing outputs one by one would run the flow once per output; this runs it once.
        The weights are gathered only with per-particle outputs (they stay lazy otherwise, so a
        run that keeps only curves never holds an (n,) array on the client).
        """
        names = [k for k in FLOW_OUTPUTS if getattr(self, k) is not None]
        if {"positions", "final", "energies"} & set(names):  # per-particle outputs: their weights too
            names.append("weights")
        values = compute(*[getattr(self, k) for k in names], progress=progress, scheduler=scheduler)
        return replace(self, **dict(zip(names, values)))

    def to_flow_result(self, potential) -> _flow.FlowResult:
        """The single-process :class:`wflow.FlowResult` (needs ``positions``; computes them)."""
        if self.positions is None:
            raise ValueError("to_flow_result needs the positions: pass keep=(..., 'positions')")
        res = self.compute() if self.is_lazy or hasattr(self.weights, "__dask_graph__") else self
        return _flow.FlowResult(
            times=self.times, positions=np.asarray(res.positions), weights=np.asarray(res.weights),
            potential=potential, norm=self.norm, tau=self.tau, scheme=self.scheme, budget=self.budget,
            stride=self.stride,
        )

    def to_dict(self) -> dict:
        """JSON-safe summary: settings and the (computed) curves; NaN becomes None."""
        res = self.compute() if self.is_lazy else self

        def lst(a):
            return None if a is None else [None if not np.isfinite(v) else float(v) for v in np.ravel(a)]

        return {
            "n_particles": self.n_particles, "norm": self.norm.name, "tau": self.tau, "T": self.T,
            "scheme": self.scheme, "stride": self.stride, "budget": self.budget,
            "times": lst(self.times), "energy_curve": lst(res.energy_curve),
            "slope_curve": lst(res.slope_curve), "step_bound": lst(res.step_bound),
        }


def _max_dist(A: np.ndarray, B: np.ndarray, nrm: Norm) -> float:
    """max_i ‖A_i − B_i‖ over the rows (0 for no rows); ℓ∞ without a reduction over tiny rows."""
    if A.size == 0:
        return 0.0
    D = np.subtract(A, B)
    if nrm.p == np.inf:  # max_i max_j |D_ij| = max over all entries (exact)
        return float(np.abs(D, out=D).max())
    return float(nrm.norm(D).max())


def _pair_bound(P: np.ndarray, nrm: Norm) -> np.ndarray:
    """max_i ‖P[l, i] − P[k, i]‖ for every pair (k, l) of stored times, shape (K+1, K+1)."""
    m = len(P)
    out = np.zeros((m, m))
    for k in range(m - 1):
        for j in range(k + 1, m):
            out[k, j] = out[j, k] = _max_dist(P[j], P[k], nrm)
    return out


def _flow_block(potential, X, w, C, rows, seed, keep, args, options):
    """One block: the single-process solve_flow on rows ``rows`` and the kept outputs."""
    T, tau, norm, scheme, budget, stride = args
    pot = potential.restrict(rows)
    X = np.asarray(X, dtype=float)
    res = _flow.solve_flow(pot, X, T, tau, norm=norm, scheme=scheme, budget=budget,
                           center=None if C is None else np.asarray(C), seed=seed, stride=stride,
                           workers=1, **options)
    return _flow_outputs(res, np.asarray(w), keep, as_norm(norm))


def _flow_outputs(res, w, keep, nrm: Norm) -> dict:
    out = {}
    P = res.positions
    if "positions" in keep:
        out["positions"] = P
    if "final" in keep:
        out["final"] = P[-1]
    if "energies" in keep or "energy_curve" in keep:
        E = res.energies
        if "energies" in keep:
            out["energies"] = E
        if "energy_curve" in keep:
            out["energy_curve"] = E @ w  # the formula of FlowResult.energy_curve, per block
    if "slope_curve" in keep:
        out["slope_curve"] = res.slopes @ w
    if "step_bound" in keep:
        out["step_bound"] = np.array([_max_dist(P[k + 1], P[k], nrm) for k in range(len(P) - 1)])
    if "winf_bound" in keep:
        out["winf_bound"] = _pair_bound(P, nrm)
    return out


def _assemble(tasks, sizes, m: int, d: int, keep, da, dask) -> dict:
    """Dask arrays of the kept outputs from per-block delayed dicts."""
    get = dask.delayed(lambda t, k: t[k], pure=True)
    arrays = {}
    shapes = {
        "positions": lambda nb: (m, nb, d), "final": lambda nb: (nb, d), "energies": lambda nb: (m, nb),
        "energy_curve": lambda nb: (m,), "slope_curve": lambda nb: (m,),
        "step_bound": lambda nb: (m - 1,), "winf_bound": lambda nb: (m, m),
    }
    axis = {"positions": 1, "final": 0, "energies": 1}
    for k in keep:
        parts = [da.from_delayed(get(t, k), shape=shapes[k](nb), dtype=float) for t, nb in zip(tasks, sizes)]
        if k in axis:
            arrays[k] = da.concatenate(parts, axis=axis[k])
        elif k in ("energy_curve", "slope_curve"):
            arrays[k] = da.stack(parts).sum(axis=0)
        else:
            arrays[k] = da.stack(parts).max(axis=0)
    return arrays


def _check_keep(keep) -> tuple[str, ...]:
    if isinstance(keep, str):
        keep = (keep,)
    try:
        keep = tuple(keep)
    except TypeError:
        raise TypeError(f"keep must be a sequence of names from {FLOW_OUTPUTS}, got {keep!r}") from None
    bad = [k for k in keep if k not in FLOW_OUTPUTS]
    if bad or not keep:
        raise ValueError(f"keep must name outputs from {FLOW_OUTPUTS}, got {keep!r}")
    return tuple(dict.fromkeys(keep))


def _block_seeds(seed, n_blocks: int) -> list:
    """The per-block generators of the single-process solve_flow with chunk_size = block size."""
    rng = rng_from(seed)
    return rng.spawn(n_blocks) if n_blocks > 1 else [rng]


def solve_flow(
    potential,
    x0,
    T: float,
    tau: float,
    norm="linf",
    scheme: str = "euler",
    budget: float | None = None,
    center=None,
    seed=None,
    *,
    weights=None,
    chunks=None,
    stride: int = 1,
    keep=("final", "energy_curve", "slope_curve", "step_bound"),
    client=None,
    **flow_options,
) -> DaskFlowResult:
    """:func:`wflow.solve_flow` on a dask array of particles, one block of rows per task.

    Each block runs the single-process ``solve_flow`` (same kernels, ``workers=1``) and
    returns only the outputs in ``keep``; curves over all particles are tree reductions of
    per-block sums or maxima. Positions and per-particle energies are bit-identical to the
    single-process run on the same particles (for ``selection="random"``: to
    ``wflow.solve_flow(..., chunk_size=c, seed=seed)`` when every block has c rows, the last
    possibly fewer); the curves differ from it only by the order of the floating-point sum.

    Parameters
    ----------
    potential : Potential
        V; shipped to the workers once. Per-particle potentials are restricted per block.
    x0 : dask array, numpy array (n, d), or ParticleMeasure
        Initial particles (dask arrays are rechunked to row blocks only).
    T, tau, norm, scheme, budget, seed : as in :func:`wflow.solve_flow`
    center : array (d,) or (n, d) (numpy or dask), optional
    weights : array (n,) (numpy or dask), optional
        Particle weights (default: a ParticleMeasure's, else uniform).
    chunks : int, optional
        Rows per block (default: a dask array's own chunks, else ~64 MiB of stored
        trajectory per block). Memory per task is about rows × d × 8 × (stored times + 3).
    stride : int
        Keep every ``stride``-th grid time (and T).
    keep : sequence of str
        Outputs to compute, from :data:`FLOW_OUTPUTS`: ``"positions"`` (K+1, n, d), ``"final"``
        (n, d), ``"energies"`` (K+1, n), ``"energy_curve"``, ``"slope_curve"`` (K+1,),
        ``"step_bound"`` (K,), ``"winf_bound"`` (K+1, K+1).
    client : dask.distributed.Client, optional
        Default: the registered client if there is one, else the threaded scheduler.
    **flow_options
        ``selection``, ``inner``, ``chunk_size`` (inside a block) and scheme options.

    Returns
    -------
    DaskFlowResult
        Lazy; call :meth:`DaskFlowResult.compute` to run everything in one pass.
    """
    dask, da = _dask()
    keep = _check_keep(keep)
    if isinstance(x0, ParticleMeasure):
        if weights is not None:
            raise ValueError("weights: pass either a ParticleMeasure or weights=, not both")
        X, weights = as_particles(np.asarray(x0.points), None, "x0"), np.asarray(x0.weights)
    else:
        X = as_particles(x0, None, "x0")
    n, d = X.shape
    T = real(T, "T", low=0.0)
    tau = real(tau, "tau", low=0.0, strict=True)
    nrm = as_norm(norm, name="norm")
    stride = integer(stride, "stride", low=1)
    for bad in ("workers", "progress"):
        if bad in flow_options:
            raise TypeError(f"{bad} is not an option of the distributed solve_flow (the scheduler runs the blocks)")
    K = len(_flow.time_grid(T, tau)) - 1
    n_keep = len(np.unique(np.r_[np.arange(0, K + 1, stride), K]))
    if chunks is not None:
        chunks = integer(chunks, "chunks", low=1)
    elif not isinstance(x0, da.Array):
        chunks = _row_chunks(n, d, 8 * d * (n_keep + 3), None)
    X = X.rechunk({0: chunks}) if chunks is not None else X
    row_chunks = X.chunks[0]
    W = _weights(weights, n, row_chunks)
    C = None
    if center is not None:
        if budget is None:
            raise ValueError("center is only used with a budget: pass budget=eps as well")
        if isinstance(center, da.Array) or np.ndim(center) == 2:
            C = _aligned(center, row_chunks, n, "center")
        else:
            C = as_points(center, "center", dim=d)[0]
    # every check of the single-process path, on a few rows and one step, before any work
    probe_rows = slice(0, min(n, 8))
    probe_c = None if C is None else (C if isinstance(C, np.ndarray) else np.asarray(C[probe_rows]))
    _flow.solve_flow(potential.restrict(probe_rows) if hasattr(potential, "restrict") else potential,
                     np.asarray(X[probe_rows]), min(T, tau), tau, norm=nrm, scheme=scheme, budget=budget,
                     center=probe_c, seed=0, workers=1, **{k: v for k, v in flow_options.items() if k != "chunk_size"})
    options = dict(flow_options)
    # random selections are seeded per inner chunk: one inner chunk per block reproduces the
    # single-process draws with chunk_size = block size
    per_block_chunk = options.get("selection") == "random" and options.get("chunk_size") is None
    client = _default_client() if client is None else client
    pot = _ship(_flow._as_potential(potential), client)
    seeds = _block_seeds(seed, len(row_chunks))
    fn = dask.delayed(_flow_block, pure=True)
    c_blocks = _blocks(C) if C is not None and not isinstance(C, np.ndarray) else [C] * len(row_chunks)
    tasks = []
    x_blocks = _input_blocks(x0.points if isinstance(x0, ParticleMeasure) else x0, X, client)
    for xb, wb, cb, sl, sd in zip(x_blocks, _blocks(W), c_blocks, _row_slices(row_chunks), seeds):
        opts = dict(options, chunk_size=sl.stop - sl.start) if per_block_chunk else options
        tasks.append(fn(pot, xb, wb, cb, sl, sd, keep, (T, tau, nrm, scheme, budget, stride), opts))
    arrays = _assemble(tasks, row_chunks, n_keep, d, keep, da, dask)
    grid = _flow.time_grid(T, tau)
    times = grid[np.unique(np.r_[np.arange(0, K + 1, stride), K])]
    return DaskFlowResult(times=times, weights=W, norm=nrm, tau=tau, scheme=scheme, stride=stride,
                          budget=None if budget is None else float(budget), **arrays)


def compute(*arrays, progress: bool = False, scheduler=None):
    """``dask.compute`` with an optional progress bar (console bar for threads, distributed's for a client).

    Returns a tuple of numpy values (None stays None).
    """
    dask, da = _dask()
    idx = [i for i, a in enumerate(arrays) if a is not None and hasattr(a, "__dask_graph__")]
    lazy = [arrays[i] for i in idx]
    out = list(arrays)
    if lazy:
        client = _default_client() if scheduler is None else None
        if progress and client is not None:
            from distributed import progress as dprogress

            futures = client.compute(lazy)
            dprogress(futures)
            values = client.gather(futures)
        elif progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar():
                values = dask.compute(*lazy, scheduler=scheduler)
        else:
            values = dask.compute(*lazy, scheduler=scheduler)
        for i, v in zip(idx, values):
            out[i] = v
    return tuple(out)


# ------------------------------------------------------------------------------------------------
# attacks
# ------------------------------------------------------------------------------------------------
def _adv_points(out) -> np.ndarray:
    """The adversarial points of an attack's return value (array, tuple or result object)."""
    if isinstance(out, tuple):
        out = out[0]
    for attr in ("x_adv", "adversarial", "points"):
        if hasattr(out, attr) and not isinstance(out, np.ndarray):
            out = getattr(out, attr)
            break
    return np.asarray(out, dtype=float)


def _labels(y, n: int, row_chunks, name: str = "y"):
    """Per-block values: None, a scalar (shared), or the blocks of an (n,) array aligned with the rows."""
    _, da = _dask()
    if y is None:
        return [None] * len(row_chunks)
    if not isinstance(y, da.Array) and np.ndim(y) == 0:
        return [y] * len(row_chunks)
    return _blocks(_aligned(y, row_chunks, n, name))


def _attack_block(fn_name, model, X, y, args, kwargs, gen_state, skip):
    X = np.asarray(X, dtype=float)
    y = y if y is None or np.ndim(y) == 0 else np.asarray(y)
    args = (args[0] if np.ndim(args[0]) == 0 else np.asarray(args[0], dtype=float),) + tuple(args[1:])
    if gen_state is not None:
        bg = getattr(np.random, gen_state["bit_generator"])()
        bg.state = gen_state
        if skip:
            bg.advance(skip)
        kwargs = dict(kwargs, seed=np.random.Generator(bg))
    return _adv_points(getattr(_attacks, fn_name)(model, X, y, *args, **kwargs))


def _attack(fn_name, model, x, y, args, kwargs, chunks, client, seed=None, random_start=False):
    dask, da = _dask()
    X = as_particles(x, None if chunks is None else integer(chunks, "chunks", low=1), "x")
    n, d = X.shape
    row_chunks = X.chunks[0]
    y_blocks = _labels(y, n, row_chunks)
    eps = args[0]  # a budget per sample travels with its rows
    eps_blocks = _labels(eps, n, row_chunks, "eps")
    # every check of the single-process attack, on a few rows (one step), before any work
    probe = slice(0, min(n, 8))
    y_probe = y if y is None or np.ndim(y) == 0 else np.asarray(y[probe])
    probe_args = ((eps if np.ndim(eps) == 0 else np.asarray(eps[probe])),) + args[1:]
    probe_args = probe_args if fn_name == "fgsm" else probe_args[:2] + (min(args[2], 1),)
    probe_kw = dict(kwargs, random_start=random_start, seed=0) if fn_name != "fgsm" else kwargs
    getattr(_attacks, fn_name)(model, np.asarray(X[probe]), y_probe, *probe_args, **probe_kw)
    state = None
    if fn_name != "fgsm":
        kwargs = dict(kwargs, random_start=random_start)
        rng = rng_from(seed)
        state = rng.bit_generator.state
        if random_start and not hasattr(rng.bit_generator, "advance"):
            raise TypeError(
                f"seed: random_start needs a bit generator with advance() (PCG64, Philox), got {state['bit_generator']}"
            )
    client = _default_client() if client is None else client
    m = _ship(model, client)
    fn = dask.delayed(_attack_block, pure=True)
    parts = []
    for xb, yb, eb, sl in zip(_input_blocks(x, X, client), y_blocks, eps_blocks, _row_slices(row_chunks)):
        # a random start draws n·d uniforms in row order: block b starts sl.start·d draws in
        skip = sl.start * d if random_start else 0
        task = fn(fn_name, m, xb, yb, (eb,) + tuple(args[1:]), kwargs, state, skip)
        parts.append(da.from_delayed(task, shape=(sl.stop - sl.start, d), dtype=float))
    return da.concatenate(parts, axis=0)


def fgsm(model, x, y, eps: float, *, loss: str | None = None, norm="linf", chunks=None, client=None):
    """:func:`wflow.adversarial.fgsm` on a dask array of inputs, block by block.

    The model is shipped to the workers once; each block runs the single-process attack, so
    the result equals ``wflow.adversarial.fgsm`` on the same inputs.

    Parameters
    ----------
    model, eps, loss, norm : as in :func:`wflow.adversarial.fgsm`
    x : dask or numpy array, shape (n, d)
    y : labels (scalar, (n,) numpy or dask array) or None (labels predicted per block)
    chunks : int, optional
        Rows per block (default: a dask array's chunks, else 65536).
    client : dask.distributed.Client, optional

    Returns
    -------
    dask array, shape (n, d)
    """
    return _attack("fgsm", model, x, y, (eps,), {"loss": loss, "norm": norm}, chunks, client)


def ifgsm(model, x, y, eps: float, alpha: float, steps: int, *, loss: str | None = None, norm="linf",
          random_start: bool = False, seed=None, chunks=None, client=None):
    """:func:`wflow.adversarial.ifgsm` on a dask array of inputs, block by block.

    With ``random_start`` block b draws its uniforms from a copy of the generator advanced
    past the draws of the rows before it, so the random start (and the result) equals the
    single-process one for the same seed; the generator passed as ``seed`` is not advanced.

    Returns
    -------
    dask array, shape (n, d)
    """
    return _attack("ifgsm", model, x, y, (eps, alpha, steps), {"loss": loss, "norm": norm},
                   chunks, client, seed=seed, random_start=random_start)


@dataclass
class DaskAttackFlow:
    """The data measure's attack flow computed blockwise (reductions over the data points).

    Attributes
    ----------
    eps, tau : float
    norm : Norm
    times : ndarray, shape (K+1,)
    expected_loss : array, shape (K+1,)
        ∫ ℓ dμ_t = Σ_i w_i ℓ(x_i(t), y_i).
    accuracy : array, shape (K+1,)
        Σ_i w_i 1{prediction at x_i(t) = y_i}.
    displacement : array, shape (K+1,)
        max_i ‖x_i(t) − x_i(0)‖ ≥ W∞(μ₀, μ_t) (labelled bound).
    final : array, shape (n, d)
        The attacked points x_i(ε).
    positions : array, shape (K+1, n, d) or None
    """

    eps: float
    tau: float
    norm: Norm
    times: np.ndarray
    expected_loss: object
    accuracy: object
    displacement: object
    final: object
    positions: object = None

    def compute(self, *, progress: bool = False, scheduler=None) -> "DaskAttackFlow":
        """Everything in one pass over the blocks (numpy arrays)."""
        names = [k for k in ("expected_loss", "accuracy", "displacement", "final", "positions")
                 if getattr(self, k) is not None]
        values = compute(*[getattr(self, k) for k in names], progress=progress, scheduler=scheduler)
        return replace(self, **dict(zip(names, values)))

    def to_dict(self) -> dict:
        """JSON-safe summary (computes the curves if needed)."""
        res = self.compute() if hasattr(self.expected_loss, "__dask_graph__") else self
        return {"eps": self.eps, "tau": self.tau, "norm": self.norm.name, "times": self.times.tolist(),
                "expected_loss": np.asarray(res.expected_loss).tolist(),
                "accuracy": np.asarray(res.accuracy).tolist(),
                "displacement": np.asarray(res.displacement).tolist()}


def _distributional_block(model, X, y, w, args, options, keep_positions, seed):
    eps, tau, norm, loss, scheme, stride = args
    X = np.asarray(X, dtype=float)
    w = np.asarray(w)
    y = y if y is None or np.ndim(y) == 0 else np.asarray(y)
    L = attack_potential(model, X, y, loss, name="data")
    res = _flow.solve_flow(-L, X, T=eps, tau=tau, norm=norm, scheme=scheme, budget=eps, seed=seed,
                           stride=stride, workers=1, **options)
    P = res.positions
    labels = np.asarray(L.labels, dtype=float)
    pred = np.asarray(L.predict(P.reshape(-1, P.shape[2]))).reshape(P.shape[:2])
    out = {
        "expected_loss": -(res.energies @ w),
        "accuracy": (pred == labels[None, :]) @ w,
        "displacement": np.array([_max_dist(Pk, P[0], as_norm(norm)) for Pk in P]),
        "final": P[-1],
    }
    if keep_positions:
        out["positions"] = P
    return out


def distributional_attack(model, data, y=None, eps: float = 0.1, tau: float | None = None, *,
                          loss: str | None = None, norm="linf", scheme: str = "euler", weights=None,
                          stride: int = 1, keep_positions: bool = False, seed=None, chunks=None,
                          client=None, **flow_options) -> DaskAttackFlow:
    """:func:`wflow.adversarial.distributional_attack` over a chunked data set.

    Each block runs the single-process flow of −ℓ (``wflow.solve_flow`` with budget ε, labels
    of its rows); the expected loss and accuracy are weighted sums of per-block partial sums,
    the displacement a maximum. The exact W∞(μ₀, μ_t) of the single-process function is not
    computed here (it is not blockwise); ``displacement`` is its labelled upper bound.

    Parameters
    ----------
    model, y, eps, tau, loss, norm, scheme, seed : as in :func:`wflow.adversarial.distributional_attack`
    data : dask or numpy array (n, d), or ParticleMeasure
    weights : array (n,) (numpy or dask), optional
    stride : int
        Keep every ``stride``-th time (and ε).
    keep_positions : bool
        Also return all stored positions (K+1, n, d).
    chunks, client : see :func:`solve_flow`

    Returns
    -------
    DaskAttackFlow
    """
    dask, da = _dask()
    if isinstance(data, ParticleMeasure):
        if weights is not None:
            raise ValueError("weights: pass either a ParticleMeasure or weights=, not both")
        X, weights = as_particles(np.asarray(data.points), None, "data"), np.asarray(data.weights)
    else:
        X = as_particles(data, None, "data")
    if chunks is not None:
        X = X.rechunk({0: integer(chunks, "chunks", low=1)})
    n, d = X.shape
    eps = real(eps, "eps", low=0.0, strict=True)
    tau = eps / 50 if tau is None else real(tau, "tau", low=0.0, strict=True)
    nrm = as_norm(norm, name="norm")
    stride = integer(stride, "stride", low=1)
    row_chunks = X.chunks[0]
    W = _weights(weights, n, row_chunks)
    y_blocks = _labels(y, n, row_chunks)
    probe = slice(0, min(n, 8))
    y_probe = y if y is None or np.ndim(y) == 0 else np.asarray(y[probe])
    _distributional.distributional_attack(model, np.asarray(X[probe]), y_probe, eps=eps, tau=max(tau, eps),
                                         loss=loss, norm=nrm, scheme=scheme, n_winf=0, seed=0, **flow_options)
    client = _default_client() if client is None else client
    m = _ship(model, client)
    seeds = _block_seeds(seed, len(row_chunks))
    fn = dask.delayed(_distributional_block, pure=True)
    args = (eps, tau, nrm, loss, scheme, stride)
    tasks = [fn(m, xb, yb, wb, args, flow_options, keep_positions, sd)
             for xb, yb, wb, sd in zip(_input_blocks(data.points if isinstance(data, ParticleMeasure) else data,
                                                     X, client), y_blocks, _blocks(W), seeds)]
    grid = _flow.time_grid(eps, tau)
    K = len(grid) - 1
    sel = np.unique(np.r_[np.arange(0, K + 1, stride), K])
    mk = len(sel)
    get = dask.delayed(lambda t, k: t[k], pure=True)

    def stacked(key, shape):
        return da.stack([da.from_delayed(get(t, key), shape=shape, dtype=float) for t in tasks])

    final = da.concatenate([da.from_delayed(get(t, "final"), shape=(nb, d), dtype=float)
                            for t, nb in zip(tasks, row_chunks)], axis=0)
    positions = None
    if keep_positions:
        positions = da.concatenate([da.from_delayed(get(t, "positions"), shape=(mk, nb, d), dtype=float)
                                    for t, nb in zip(tasks, row_chunks)], axis=1)
    return DaskAttackFlow(
        eps=eps, tau=tau, norm=nrm, times=grid[sel],
        expected_loss=stacked("expected_loss", (mk,)).sum(axis=0),
        accuracy=stacked("accuracy", (mk,)).sum(axis=0),
        displacement=stacked("displacement", (mk,)).max(axis=0),
        final=final, positions=positions,
    )


# ------------------------------------------------------------------------------------------------
# conflict graphs (the blockwise stage of the optimal adversarial risk)
# ------------------------------------------------------------------------------------------------
@dataclass
class ConflictEdges(ConflictGraph):
    """Pairs (i, j) with ‖X0[i] − X1[j]‖ ≤ radius, gathered from blockwise tasks.

    A :class:`wflow.adversarial.optimal_risk.ConflictGraph` (same fields: ``rows``, ``cols``
    sorted by (row, col), ``dists``, ``shape``, ``radius``, ``norm``, ``exact_at``) that also
    computes F(r) itself (:meth:`transported`).
    """

    def to_graph(self) -> ConflictGraph:
        """The same edges as a plain ``wflow.adversarial.optimal_risk.ConflictGraph``."""
        return ConflictGraph(rows=self.rows, cols=self.cols, dists=self.dists, shape=self.shape,
                             radius=self.radius, norm=self.norm, exact_at=self.exact_at)

    def transported(self, r: float) -> float:
        """F(r): the largest mass transportable between the uniform measures on X0 and X1
        along edges of length ≤ r (exact integer max-flow, scipy)."""
        r = real(r, "r", low=0.0)
        if r > self.radius:
            raise ValueError(f"r must be <= radius = {self.radius:g}, got {r:g}")
        n0, n1 = self.shape
        m = self.within(r)
        L = n0 * n1 // math.gcd(n0, n1)  # masses 1/n0 = (L/n0)/L and 1/n1 = (L/n1)/L
        if L * max(n0, n1) >= 2**31:
            raise ValueError(f"uniform capacities of {n0} and {n1} points overflow scipy's int32 max-flow")
        s, t = n0 + n1, n0 + n1 + 1
        src = np.r_[np.full(n0, s), self.rows[m], n0 + np.arange(n1)]
        dst = np.r_[np.arange(n0), n0 + self.cols[m], np.full(n1, t)]
        cap = np.r_[np.full(n0, L // n0), np.full(int(m.sum()), L), np.full(n1, L // n1)].astype(np.int32)
        G = sp.csr_matrix((cap, (src, dst)), shape=(n0 + n1 + 2,) * 2)
        return maximum_flow(G, s, t).flow_value / L


def _edge_block(A, B, i0, j0, radius, nrm, kernel, exact_at=()):
    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    if kernel is not None:
        g = kernel(A, B, radius, nrm, exact_at=exact_at)
        r, c, dist = g.rows, g.cols, g.dists
    else:
        p = nrm.p
        D = (cdist(A, B, "chebyshev") if p == np.inf else cdist(A, B, "cityblock") if p == 1
             else cdist(A, B, "euclidean") if p == 2 else cdist(A, B, "minkowski", p=p))
        r, c = np.nonzero(D <= radius)
        dist = D[r, c]
    return np.asarray(r, np.int64) + i0, np.asarray(c, np.int64) + j0, np.asarray(dist, float)


def _input_blocks(x, a, client) -> list:
    """Row blocks of ``a``; in-memory input goes to the workers by one scatter (not in the graph)."""
    if client is None or hasattr(x, "__dask_graph__"):
        return _blocks(a)
    X = as_points(x)
    return client.scatter([X[sl] for sl in _row_slices(a.chunks[0])], hash=False)


def _risk_kernel():
    """The single-process conflict-graph kernel of ``wflow.adversarial.optimal_risk`` if present."""
    try:
        from .adversarial.optimal_risk import conflict_graph
    except ImportError:
        return None
    return conflict_graph


def conflict_edges(X0, X1, radius: float, norm="linf", *, chunks=None, client=None,
                   progress: bool = False, exact_at=()) -> ConflictEdges:
    """The conflict graph {(i, j) : ‖X0[i] − X1[j]‖ ≤ radius}, one task per pair of row blocks.

    Each task runs the single-process kernel (``wflow.adversarial.optimal_risk.conflict_graph``
    when available, else scipy ``cdist``) on its two blocks; the edges are gathered and sorted
    on the client (the graph is small; the max-flow stays on one machine).

    Parameters
    ----------
    X0 : dask or numpy array, shape (n0, d)
    X1 : dask or numpy array, shape (n1, d)
    radius : float ≥ 0
        Graph radius; the risk at budget ε needs radius ≥ 2ε.
    norm : norm specification
    chunks : int, optional
        Rows per block of X0 and X1 (default 4096; memory per task ≈ chunks² × 8 bytes).
    client : dask.distributed.Client, optional
    progress : bool
    exact_at : sequence of float
        Further radii ≤ ``radius`` at which ``dists <= r`` must be the exact membership test
        (passed to the kernel; the cdist fallback is exact at every radius).

    Returns
    -------
    ConflictEdges
    """
    dask, da = _dask()
    chunks = 4096 if chunks is None else integer(chunks, "chunks", low=1)
    A = as_particles(X0, chunks, "X0")
    B = as_particles(X1, chunks, "X1")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"X1 must have the dimension of X0 (d = {A.shape[1]}), got d = {B.shape[1]}")
    radius = real(radius, "radius", low=0.0)
    nrm = as_norm(norm, name="norm")
    kernel = _risk_kernel()
    fn = dask.delayed(_edge_block, pure=True)
    exact_at = tuple(sorted({float(real(r, "exact_at", low=0.0)) for r in exact_at} | {radius}))
    if exact_at[-1] > radius:
        raise ValueError(f"exact_at radii must be <= radius = {radius:g}, got {exact_at[-1]:g}")
    client = _default_client() if client is None else client
    blocks_a, blocks_b = _input_blocks(X0, A, client), _input_blocks(X1, B, client)
    tasks = [fn(a, b, sa.start, sb.start, radius, nrm, kernel, exact_at)
             for a, sa in zip(blocks_a, _row_slices(A.chunks[0]))
             for b, sb in zip(blocks_b, _row_slices(B.chunks[0]))]
    if client is not None:
        futures = client.compute(tasks)
        if progress:
            from distributed import progress as dprogress

            dprogress(futures)
        parts = client.gather(futures)
    elif progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            parts = dask.compute(*tasks)
    else:
        parts = dask.compute(*tasks)
    rows = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    cols = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
    dists = np.concatenate([p[2] for p in parts]) if parts else np.empty(0)
    order = np.lexsort((cols, rows))
    return ConflictEdges(rows=rows[order], cols=cols[order], dists=dists[order],
                         shape=(A.shape[0], B.shape[0]), radius=radius, norm=nrm, exact_at=exact_at)


def optimal_adversarial_risk(X0, X1, eps, norm="linf", weights0=None, weights1=None, *, chunks=None,
                             client=None, progress: bool = False):
    """R*(ε) = ½F(2ε) with the conflict graph built blockwise (:func:`conflict_edges`).

    The same value as ``wflow.adversarial.optimal_adversarial_risk`` (same graph, same
    max-flow): the max-flow runs on the client with
    ``wflow.adversarial.optimal_risk.optimal_risk_from_graph`` (any weights); without that
    module, the exact integer max-flow of :meth:`ConflictEdges.transported` (uniform weights).

    Returns
    -------
    float for a scalar ``eps``, else an array shaped like ``eps``.
    """
    e = np.asarray(eps, dtype=float)
    if e.size == 0 or not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(f"eps must be finite and >= 0 (at least one value), got {eps!r}")
    radii = 2 * e.ravel()
    g = conflict_edges(X0, X1, float(radii.max()), norm, chunks=chunks, client=client, progress=progress,
                       exact_at=tuple(radii))
    try:
        from .adversarial.optimal_risk import optimal_risk_from_graph
    except ImportError:  # pragma: no cover - the module ships with wflow
        if weights0 is not None or weights1 is not None:
            raise ValueError("weights0/weights1 need wflow.adversarial.optimal_risk (not available)") from None
        risk = np.array([0.5 * g.transported(r) for r in radii])
    else:
        risk = np.asarray(optimal_risk_from_graph(g.to_graph(), e.ravel(), weights0, weights1).risk)
    return float(risk[0]) if e.ndim == 0 else risk.reshape(e.shape)


def solve_flow_on(scheduler, potential, x0, T: float, tau: float, *, chunk_size=None, progress: bool = False,
                  timeout: float = 10.0, **flow_kwargs) -> _flow.FlowResult:
    """Run a flow through dask and return the single-process :class:`wflow.FlowResult`.

    What ``wflow run`` does with a ``[compute]`` section: the blocks run on ``scheduler``
    (``"threads"``, ``"sync"``, ``"processes"`` or a scheduler address such as
    ``"tcp://host:8786"``) and the stored positions are gathered (every output of the command
    needs them). An unreachable address raises ``ConnectionError`` naming it, before any work.
    """
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise TypeError(f"scheduler must be 'threads', 'sync', 'processes' or an address, got {scheduler!r}")
    local = scheduler in ("threads", "sync", "processes")
    n, d = (x0.points if isinstance(x0, ParticleMeasure) else np.atleast_2d(x0)).shape
    n_keep = (len(_flow.time_grid(real(T, "T", low=0.0), real(tau, "tau", low=0.0, strict=True))) - 1) \
        // flow_kwargs.get("stride", 1) + 2
    check_memory(8.0 * n_keep * n * (d + 1), f"the gathered trajectory ({n_keep}, {n}, {d}) and its energies",
                 "store fewer times with stride=..., or use wflow.distributed.solve_flow and keep only curves")
    client = None if local else connect(scheduler, timeout)
    try:
        res = solve_flow(potential, x0, T, tau, chunks=chunk_size, keep=("positions",),
                         client=client, **flow_kwargs)
        out = res.compute(progress=progress, scheduler=scheduler if local else None)
        return out.to_flow_result(_flow._as_potential(potential))
    finally:
        if client is not None:
            client.close()
