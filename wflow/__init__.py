"""wflow: ∞-curves of maximal slope, Wasserstein ∞-flows and adversarial attacks as flows.

The public names load lazily (``import wflow`` stays fast and does not import matplotlib):

- :func:`solve_flow`, :class:`FlowResult` — flows of points and particle measures;
- :class:`ParticleMeasure` — discrete probability measures;
- :func:`wasserstein`, :func:`winf` — checked W_p and exact W∞;
- :func:`superpose`, :func:`superpose_snapshots`, :class:`CurveMeasure` — representing measures;
- :class:`Norm`, :func:`as_norm` — the norm value object every ``norm=`` argument accepts;
- submodules ``norms``, ``potentials``, ``steps``, ``schemes``, ``minmove``, ``studies``,
  ``adversarial``, ``plotting``, ``verify``.

Mathematics: ``docs/theory.md``; names, shapes and tolerances: ``docs/conventions.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the one version string (pyproject.toml reads it: ``dynamic = ["version"]``)
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
    "Norm": "wflow.norms",
    "as_norm": "wflow.norms",
    "set_memory_limit": "wflow.memory",
}
_SUBMODULES = {
    "norms", "potentials", "steps", "schemes", "flow", "measures", "transport", "superposition",
    "minmove", "studies", "adversarial", "verify", "plotting", "io", "memory",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"wflow.{name}")
    raise AttributeError(f"module 'wflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
