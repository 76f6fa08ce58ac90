"""Exact W∞ and checked W_p between discrete measures (``docs/transport.md``).

Layout (geometry → problem → solvers → public functions):

- :mod:`~wflow.transport.geometry` — ℓq distances (one routine, any magnitude), threshold graphs
  and nearest neighbours from KD-trees (d ≤ 8) or BLAS blocks (high d), no n×m matrix;
- :mod:`~wflow.transport.problem` — validated pairs of measures, supports, coincident atoms
  merged before solving and split back in the plan;
- :mod:`~wflow.transport.solvers` (1-D quantiles, bottleneck assignment, lower bounds) and
  :mod:`~wflow.transport.weighted` (integer max-flow on sparse threshold graphs);
- :mod:`~wflow.transport.result` — :class:`Coupling` and :class:`TransportResult`.

Public functions: :func:`winf` (float) and :func:`solve_winf` (value, coupling, certificate),
:func:`wasserstein` (float) and :func:`solve_wasserstein`, :func:`optimal_coupling` (W∞-optimal,
W2-cheapest among those), :func:`labelled_upper_bound` and :func:`labelled_lipschitz` (certified
bounds for labelled particles in one pass), :func:`cost_matrix`.
"""

from __future__ import annotations

from ..measures import as_measure
from ..norms import parse_norm
from .api import optimal_coupling, solve_wasserstein, solve_winf, wasserstein, winf
from .geometry import Geometry, _cost, _pair_dist, cost_matrix, labelled_lipschitz, labelled_upper_bound
from .problem import MASS_TOL
from .result import MARGINAL_TOL, Coupling, TransportResult
from .solvers import projection_bound, rank_matching

__all__ = [
    "Coupling",
    "TransportResult",
    "cost_matrix",
    "labelled_lipschitz",
    "labelled_upper_bound",
    "optimal_coupling",
    "solve_wasserstein",
    "solve_winf",
    "wasserstein",
    "winf",
]

# private names kept importable for tests
_rank_matching = rank_matching
_projection_bound = projection_bound
_unused = (as_measure, parse_norm, Geometry, _cost, _pair_dist, MASS_TOL, MARGINAL_TOL)
