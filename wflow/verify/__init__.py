"""One verification API: a check per theorem statement, one report type, derived tolerances.

See ``docs/verification.md`` for the statements, the derivation of every default tolerance and
the mutation catalogue that shows each check can fail.
"""

from ..slope import metric_slope  # the core definition (wflow.slope), re-exported
from .adversarial import check_minmove_step_is_worst_case, measure_attack_gap
from .checks import (
    TOLERANCE_NAMES,
    as_curve_measure,
    check_curve_lipschitz,
    check_energy_dissipation,
    check_flow,
    check_marginals,
    check_maximal_slope_mass,
    check_snapshot_lipschitz,
    segment_analysis,
    verify_characterization,
)
from .refinement import MIN_ORDER, check_convergence, check_dissipation_refinement, check_held_out
from .report import CheckReport

__all__ = [
    "MIN_ORDER",
    "check_convergence",
    "check_dissipation_refinement",
    "check_held_out",
    "check_minmove_step_is_worst_case",
    "measure_attack_gap",
    "CheckReport",
    "TOLERANCE_NAMES",
    "as_curve_measure",
    "check_curve_lipschitz",
    "check_energy_dissipation",
    "check_flow",
    "check_marginals",
    "check_maximal_slope_mass",
    "check_snapshot_lipschitz",
    "metric_slope",
    "segment_analysis",
    "verify_characterization",
]
