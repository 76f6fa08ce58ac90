"""Run configurations (TOML) for ``wflow run``, and atomic output directories.

A run configuration describes one simulation: the potential (or model), the initial measure,
the flow (norm, scheme, τ, T, budget) and the outputs. Every key is checked — unknown keys,
wrong types and out-of-range values raise :class:`ConfigError` naming the key (``flow.tau``)
and what was expected — before anything runs or is written.

Example::

    [potential]
    kind = "gaussian_mixture"        # or quadratic, linear, double_well, model

    [initial]
    kind = "uniform"                 # or gaussian, points, dataset
    n = 300
    low = [-1.2, -1.2]
    high = [1.2, 1.2]
    seed = 0

    [flow]
    T = 1.0
    tau = 0.01
    norm = "linf"
    scheme = "euler"                 # or minmove
    # budget = 0.2

    [output]
    figures = ["landscape", "snapshots", "energy", "animation"]
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

import numpy as np

from .. import potentials as P
from ..adversarial.data import load_two_moons, make_two_moons
from ..adversarial.losses import make_loss
from ..adversarial.mlp import load_model
from ..measures import ParticleMeasure

__all__ = [
    "ConfigError",
    "RunConfig",
    "load_config",
    "parse_config",
    "build_potential",
    "build_initial",
    "ModelPotential",
    "FIGURES",
]

FIGURES = ("landscape", "snapshots", "energy", "animation")


class ConfigError(ValueError):
    """An invalid run configuration; the message names the offending key."""


# --------------------------------------------------------------------------------------------
# schema: section -> key -> (checker, required, default)
# --------------------------------------------------------------------------------------------
def _number(key, v, *, low=None, strict=False, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{key} must be {kind}, got {type(v).__name__} {v!r}")
    if integer and not isinstance(v, int):
        raise ConfigError(f"{key} must be an integer, got {v!r}")
    if not math.isfinite(v):
        raise ConfigError(f"{key} must be finite, got {v!r}")
    if low is not None and (v <= low if strict else v < low):
        raise ConfigError(f"{key} must be {'>' if strict else '>='} {low:g}, got {v!r}")
    return v


def _string(key, v, choices=None):
    if not isinstance(v, str):
        raise ConfigError(f"{key} must be a string, got {type(v).__name__} {v!r}")
    if choices is not None and v not in choices:
        raise ConfigError(f"{key} must be one of {list(choices)}, got {v!r}")
    return v


def _array(key, v, ndim):
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a {'list' if ndim == 1 else 'list of lists'} of numbers, got {v!r}") from None
    if a.ndim != ndim or a.size == 0:
        raise ConfigError(f"{key} must be a {ndim}-D array of numbers, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{key} must hold finite numbers")
    return a


def _norm(key, v):
    if isinstance(v, str):
        return _string(key, v, ("l1", "l2", "linf"))
    return _number(key, v, low=1.0)


_POTENTIALS = ("gaussian_mixture", "double_well", "quadratic", "linear", "model")
_INITIALS = ("uniform", "gaussian", "points", "dataset")

# each entry: key -> checker(fullkey, value) -> value
_SCHEMA: dict[str, dict] = {
    "potential": {
        "kind": lambda k, v: _string(k, v, _POTENTIALS),
        "centers": lambda k, v: _array(k, v, 2),
        "amplitudes": lambda k, v: _array(k, v, 1),
        "widths": lambda k, v: _array(k, v, 1) if isinstance(v, list) else _number(k, v, low=0, strict=True),
        "dim": lambda k, v: _number(k, v, low=1, integer=True),
        "a": lambda k, v: _array(k, v, 1) if isinstance(v, list) else _number(k, v),
        "b": lambda k, v: _array(k, v, 1) if isinstance(v, list) else _number(k, v),
        "c": lambda k, v: _number(k, v),
        "A": lambda k, v: _array(k, v, 2),
        "name": lambda k, v: _string(k, v),
        "loss": lambda k, v: _string(k, v, ("mse", "ce")),
    },
    "initial": {
        "kind": lambda k, v: _string(k, v, _INITIALS),
        "n": lambda k, v: _number(k, v, low=1, integer=True),
        "low": lambda k, v: _array(k, v, 1),
        "high": lambda k, v: _array(k, v, 1),
        "mean": lambda k, v: _array(k, v, 1),
        "std": lambda k, v: _number(k, v, low=0, strict=True),
        "points": lambda k, v: _array(k, v, 2),
        "weights": lambda k, v: _array(k, v, 1),
        "seed": lambda k, v: _number(k, v, low=0, integer=True),
        "name": lambda k, v: _string(k, v, ("two_moons_test", "two_moons_train", "two_moons")),
        "noise": lambda k, v: _number(k, v, low=0),
    },
    "flow": {
        "T": lambda k, v: _number(k, v, low=0),
        "tau": lambda k, v: _number(k, v, low=0, strict=True),
        "norm": _norm,
        "scheme": lambda k, v: _string(k, v, ("euler", "minmove")),
        "budget": lambda k, v: _number(k, v, low=0),
        "selection": lambda k, v: _string(k, v, ("canonical", "random")),
        "seed": lambda k, v: _number(k, v, low=0, integer=True),
        "stride": lambda k, v: _number(k, v, low=1, integer=True),
        "inner": lambda k, v: _string(k, v),
    },
    "robustness": {  # a robustness study instead of a flow (wflow.adversarial.robustness_study)
        "dataset": lambda k, v: _string(k, v, ("two_moons", "digits", "breast_cancer")),
        "norm": _norm,
        "eps": lambda k, v: _array(k, v, 1),
        "n_eps": lambda k, v: _number(k, v, low=2, integer=True),
        "train_eps": lambda k, v: _number(k, v, low=0),
        "inners": lambda k, v: _string_list(k, v, ("none", "fgsm", "ifgsm", "flow")),
        "steps": lambda k, v: _number(k, v, low=1, integer=True),
        "epochs": lambda k, v: _number(k, v, low=0, integer=True),
        "eval_steps": lambda k, v: _number(k, v, low=1, integer=True),
        "restarts": lambda k, v: _number(k, v, low=1, integer=True),
        "n_eval": lambda k, v: _number(k, v, low=1, integer=True),
        "seed": lambda k, v: _number(k, v, low=0, integer=True),
    },
    "output": {
        "figures": lambda k, v: _figures(k, v),
        "save_npz": lambda k, v: _bool(k, v),
        "frames": lambda k, v: _number(k, v, low=2, integer=True),
        "dpi": lambda k, v: _number(k, v, low=10, integer=True),
    },
    "compute": {  # optional: run the flow through dask (wflow.distributed, docs/distributed.md)
        "scheduler": lambda k, v: _scheduler(k, v),
        "chunk_size": lambda k, v: _number(k, v, low=1, integer=True),
        "timeout": lambda k, v: _number(k, v, low=0, strict=True),
    },
}
_REQUIRED = {"flow": ("T", "tau")}


def _scheduler(key, v):
    if not isinstance(v, str) or not (v in ("threads", "sync", "processes") or ":" in v):
        raise ConfigError(f"{key} must be 'threads', 'sync', 'processes' or a scheduler address like "
                          f"'tcp://host:8786', got {v!r}")
    return v


def _string_list(key, v, choices):
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x in choices for x in v):
        raise ConfigError(f"{key} must be a non-empty list of strings from {list(choices)}, got {v!r}")
    return v


def _bool(key, v):
    if not isinstance(v, bool):
        raise ConfigError(f"{key} must be true or false, got {type(v).__name__} {v!r}")
    return v


def _figures(key, v):
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{key} must be a list of strings from {list(FIGURES)}, got {v!r}")
    bad = [x for x in v if x not in FIGURES]
    if bad:
        raise ConfigError(f"{key} has unknown figure {bad[0]!r}; expected some of {list(FIGURES)}")
    return v


@dataclass
class RunConfig:
    """A validated run configuration (one dict per section, keys checked)."""

    potential: dict
    initial: dict
    flow: dict
    output: dict
    source: str = "<dict>"
    compute: dict = field(default_factory=dict)
    robustness: dict = field(default_factory=dict)  # non-empty: a robustness study (no flow)

    def to_dict(self) -> dict:
        def clean(d):
            return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}

        if self.robustness:
            return {s: clean(getattr(self, s)) for s in ("robustness", "output")}
        out = {s: clean(getattr(self, s)) for s in ("potential", "initial", "flow", "output")}
        return out | ({"compute": dict(self.compute)} if self.compute else {})


def parse_config(data: dict, source: str = "<dict>") -> RunConfig:
    """Validate a configuration dict (as read from TOML) into a :class:`RunConfig`.

    Raises
    ------
    ConfigError
        Naming the first offending key (``section.key``) and what was expected.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"the configuration must be a table, got {type(data).__name__}")
    for section in data:
        if section not in _SCHEMA:
            raise ConfigError(f"unknown section [{section}]; expected sections {list(_SCHEMA)}")
        if not isinstance(data[section], dict):
            raise ConfigError(f"{section} must be a table ([{section}]), got {type(data[section]).__name__}")
    out = {}
    for section, schema in _SCHEMA.items():
        table = data.get(section, {})
        checked = {}
        for key, value in table.items():
            full = f"{section}.{key}"
            if key not in schema:
                raise ConfigError(f"unknown key {full}; expected one of {sorted(schema)}")
            checked[key] = schema[key](full, value)
        for key in _REQUIRED.get(section, ()) if "robustness" not in data else ():
            if key not in checked:
                raise ConfigError(f"missing key {section}.{key}")
        out[section] = checked
    if "robustness" in data:
        extra = [sec for sec in ("potential", "initial", "flow") if sec in data]
        if extra:
            raise ConfigError(f"[robustness] runs a robustness study: remove the section [{extra[0]}]")
        out["robustness"].setdefault("dataset", "two_moons")
        return RunConfig(source=source, **out)
    out.pop("robustness")
    _cross_check(out)
    return RunConfig(source=source, **out)


def _cross_check(cfg: dict) -> None:
    pot, ini, flow = cfg["potential"], cfg["initial"], cfg["flow"]
    kind = pot.setdefault("kind", "gaussian_mixture")
    allowed = {
        "gaussian_mixture": {"centers", "amplitudes", "widths"},
        "double_well": {"dim", "a", "b"},
        "quadratic": {"A", "b", "c"},
        "linear": {"a", "c"},
        "model": {"name", "loss"},
    }[kind]
    for key in pot:
        if key != "kind" and key not in allowed:
            raise ConfigError(f"potential.{key} is not a parameter of potential.kind = {kind!r}; expected {sorted(allowed)}")
    if kind == "quadratic" and "A" not in pot:
        raise ConfigError("missing key potential.A (required by potential.kind = 'quadratic')")
    if kind == "linear" and not isinstance(pot.get("a"), np.ndarray):
        raise ConfigError("potential.a must be a list of numbers (required by potential.kind = 'linear')")
    if kind == "model" and "name" not in pot:
        raise ConfigError("missing key potential.name (required by potential.kind = 'model')")
    if kind == "gaussian_mixture" and ("amplitudes" in pot or "widths" in pot) and "centers" not in pot:
        raise ConfigError("missing key potential.centers (amplitudes/widths need centers)")
    ik = ini.setdefault("kind", "uniform")
    allowed_i = {
        "uniform": {"n", "low", "high", "seed"},
        "gaussian": {"n", "mean", "std", "seed"},
        "points": {"points", "weights"},
        "dataset": {"name", "n", "seed", "noise"},
    }[ik]
    for key in ini:
        if key != "kind" and key not in allowed_i:
            raise ConfigError(f"initial.{key} is not a parameter of initial.kind = {ik!r}; expected {sorted(allowed_i)}")
    if ik == "points" and "points" not in ini:
        raise ConfigError("missing key initial.points (required by initial.kind = 'points')")
    if ik == "points" and "weights" in ini and ini["weights"].shape != (ini["points"].shape[0],):
        raise ConfigError(f"initial.weights must have length {ini['points'].shape[0]} (one per point)")
    if ik == "uniform" and "low" in ini and "high" in ini:
        if ini["low"].shape != ini["high"].shape or np.any(ini["low"] >= ini["high"]):
            raise ConfigError("initial.high must have the shape of initial.low and exceed it componentwise")
    if "inner" in flow and flow.get("scheme", "euler") != "minmove":
        raise ConfigError("flow.inner is an option of flow.scheme = 'minmove'")
    T, tau = flow["T"], flow["tau"]
    if T / tau > 1e6:
        raise ConfigError(f"flow.tau = {tau:g} gives {T / tau:.3g} steps for flow.T = {T:g}; at most 1e6 allowed")


def load_config(path) -> RunConfig:
    """Read and validate a TOML run configuration.

    Raises
    ------
    ConfigError
        For a missing file, a TOML syntax error, or an invalid key (named in the message).
    """
    path = os.fspath(path)
    if not isinstance(path, str) or path == "":
        raise ConfigError(f"the config path must be a non-empty file name, got {path!r}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, source=path)


# --------------------------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------------------------
def build_potential(cfg: RunConfig):
    """The potential described by ``cfg.potential`` (a :class:`ModelPotential` for ``model``)."""
    pot = cfg.potential
    kind = pot["kind"]
    try:
        if kind == "gaussian_mixture":
            if "centers" not in pot:
                return P.GaussianMixture.default()
            return P.GaussianMixture(pot["centers"], pot.get("amplitudes"), pot.get("widths", 0.5))
        if kind == "double_well":
            return P.DoubleWell(pot.get("dim", 2), float(pot.get("a", 1.0)), float(pot.get("b", 1.0)))
        if kind == "quadratic":
            return P.Quadratic(pot["A"], pot.get("b"), float(pot.get("c", 0.0)))
        if kind == "linear":
            return P.Linear(pot["a"], float(pot.get("c", 0.0)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"potential: {exc}") from None
    # kind == "model": the adversarial loss of a shipped classifier (labels: predicted)
    try:
        model = load_model(pot["name"])
    except (KeyError, ValueError, FileNotFoundError, OSError) as exc:
        raise ConfigError(f"potential.name: {exc}") from None
    return ModelPotential(model, pot.get("loss", "mse"))


class ModelPotential:
    """A shipped classifier's loss, bound to the initial points later (labels = predictions at x0)."""

    def __init__(self, model, loss: str):
        self.model, self.loss = model, loss
        self.dim = model.dim

    def bind(self, X0):
        """V = −loss with the labels the model predicts at the initial points (an attack)."""
        return -make_loss(self.model, None, self.loss, x=X0)


def build_initial(cfg: RunConfig, dim: int | None):
    """The initial measure described by ``cfg.initial`` (a ParticleMeasure)."""
    ini = cfg.initial
    kind = ini["kind"]
    rng = np.random.default_rng(ini.get("seed", 0))
    n = ini.get("n", 200)
    d = dim or 2
    if kind == "uniform":
        low = ini.get("low", np.full(d, -1.0))
        high = ini.get("high", np.full(d, 1.0))
        if low.shape != (d,) or high.shape != (d,):
            raise ConfigError(f"initial.low/high must have length {d} (the potential's dimension)")
        return ParticleMeasure(rng.uniform(low, high, size=(n, d)))
    if kind == "gaussian":
        mean = ini.get("mean", np.zeros(d))
        if mean.shape != (d,):
            raise ConfigError(f"initial.mean must have length {d} (the potential's dimension)")
        return ParticleMeasure(mean + ini.get("std", 0.5) * rng.standard_normal((n, d)))
    if kind == "points":
        X = ini["points"]
        if dim is not None and X.shape[1] != dim:
            raise ConfigError(f"initial.points must have {dim} columns (the potential's dimension), got {X.shape[1]}")
        try:
            return ParticleMeasure(X, ini.get("weights"))
        except ValueError as exc:
            raise ConfigError(f"initial.weights: {exc}") from None
    # dataset: the shipped two-moons split (first n points) or a fresh seeded sample
    if dim not in (None, 2):
        raise ConfigError(f"initial.kind = 'dataset' gives 2-D points but the potential has dimension {dim}")
    name = ini.get("name", "two_moons_test")
    if name == "two_moons":
        X, _ = make_two_moons(n=n, noise=float(ini.get("noise", 0.1)), seed=ini.get("seed", 0))
    else:
        X = load_two_moons()["X_test" if name == "two_moons_test" else "X_train"]
        if n > len(X):
            raise ConfigError(f"initial.n = {n} exceeds the {len(X)} points of initial.name = {name!r}; "
                              f"use at most {len(X)} or initial.name = 'two_moons' (a fresh sample)")
        X = X[:n]
    return ParticleMeasure(X)
