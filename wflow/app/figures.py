"""Figure helpers of the ``wflow`` commands (these load matplotlib)."""

from __future__ import annotations

import numpy as np

from ..io import StagedOutput
from ..plotting import save_figure

__all__ = ["ProbabilityField", "save_staged_figure"]


class ProbabilityField:
    """A classifier's P(class 1 | x) as a scalar field for contour plots (``.value(X) -> (n,)``)."""

    def __init__(self, model):
        self.model = model

    def value(self, X):
        return np.asarray(self.model.predict_proba(X), dtype=float).reshape(-1)


def save_staged_figure(st: StagedOutput, name: str, fig, dpi: int) -> str:
    """Save ``fig`` as the staged output ``name``; returns ``name``."""
    save_figure(fig, st.path(name), dpi=dpi)
    return name
