"""wflow: ∞-curves of maximal slope, Wasserstein ∞-flows and adversarial attacks as flows.

The public names load lazily (``import wflow`` stays fast and does not import matplotlib):

- :func:`solve_flow`, :class:`FlowResult` — flows of points and particle measures;
- :class:`ParticleMeasure` — discrete probability measures;
- :func:`wasserstein`, :func:`winf` — checked W_p and exact W∞;
- :func:`superpose`, :func:`superpose_snapshots`, :class:`CurveMeasure` — representing measures;
- submodules ``norms``, ``potentials``, ``schemes``, ``adversarial``, ``plotting``, ``verify``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "solve_flow": "wflow.flow",
    "FlowResult": "wflow.flow",
    "ParticleMeasure": "wflow.measures",
    "wasserstein": "wflow.transport",
    "winf": "wflow.transport",
    "superpose": "wflow.superposition",
    "superpose_snapshots": "wflow.superposition",
    "CurveMeasure": "wflow.superposition",
}
_SUBMODULES = {
    "norms", "potentials", "schemes", "flow", "measures", "transport", "superposition",
    "minmove", "studies", "adversarial", "verify", "plotting", "io",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"wflow.{name}")
    raise AttributeError(f"module 'wflow' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
