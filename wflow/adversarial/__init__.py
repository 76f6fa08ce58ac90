"""Adversarial attacks as ∞-flows: two-moons data, a numpy MLP classifier, attacks, distributional
attacks and an optional PyTorch adapter.

Attacks ascend a loss ℓ, so they are flows of the potential V = −ℓ (see ``docs/robustness.md``):
IFGSM is explicit Euler with a budget in ℓ∞, FGSM one step of size ε, and the minimizing-movement
attack the scheme ``"minmove"``. ``y=None`` in an attack means "attack the label the model
predicts at the clean input". Names load lazily (torch is imported only by ``torch_adapter``).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "make_two_moons": "data",
    "load_two_moons": "data",
    "load_dataset": "data",
    "Dataset": "data",
    "MLP": "mlp",
    "load_model": "mlp",
    "fold_batchnorm": "mlp",
    "train": "training",
    "LossPotential": "losses",
    "SquaredErrorLoss": "losses",
    "CrossEntropyLoss": "losses",
    "make_loss": "losses",
    "AttackResult": "attacks",
    "fgsm": "attacks",
    "ifgsm": "attacks",
    "minmove_attack": "attacks",
    "random_start": "attacks",
    "distributional_attack": "distributional",
    "DistributionalAttackResult": "distributional",
    "worst_case_loss": "distributional",
    "WorstCase": "distributional",
    "attack_gaps": "distributional",
    "AttackGapReport": "distributional",
    "ConflictGraph": "optimal_risk",
    "conflict_graph": "optimal_risk",
    "OptimalAttack": "optimal_risk",
    "OptimalRisk": "optimal_risk",
    "optimal_risk_from_graph": "optimal_risk",
    "optimal_adversarial_risk": "optimal_risk",
    "MulticlassRiskBound": "optimal_risk",
    "pairwise_risk_lower_bound": "optimal_risk",
    "adversarial_train": "adversarial_training",
    "AdversarialTrainingHistory": "adversarial_training",
    "robustness_study": "robustness",
    "RobustnessStudy": "robustness",
    "TorchPotential": "torch_adapter",
    "mlp_to_torch": "torch_adapter",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"wflow.adversarial.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wflow.adversarial' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
