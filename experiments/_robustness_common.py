"""Shared driver of the robustness experiments (report.json + figure from robustness_study)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

try:
    import wflow
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import wflow  # noqa: F401

from wflow.adversarial import robustness_study
from wflow.plotting import save_figure


def run(dataset: str, doc: str, argv=None, quick: dict | None = None, full: dict | None = None) -> int:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default=f"out/robustness_{dataset}")
    ap.add_argument("--quick", action="store_true", help="few epochs and budgets (a smoke run)")
    ap.add_argument("--norm", default="linf")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    kw = dict(quick or {}) if a.quick else dict(full or {})
    t0 = time.perf_counter()
    study = robustness_study(dataset, norm=a.norm, seed=a.seed, **kw)
    os.makedirs(a.out, exist_ok=True)
    rep = study.to_dict()
    rep["seconds"] = time.perf_counter() - t0
    rep["quick"] = a.quick
    path = os.path.join(a.out, "report.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rep, f, indent=1, allow_nan=False)
    os.replace(tmp, path)
    save_figure(study.figure(), os.path.join(a.out, f"robustness_{dataset}.png"), dpi=90)
    print(f"wrote {path} and robustness_{dataset}.png in {rep['seconds']:.0f} s")
    for k in study.inners:
        print(f"  trained {k:5s}: clean acc {study.clean_accuracy[k]:.3f}, robust error "
              + ", ".join(f"{e:.3f}" for e in study.robust_error[k]))
    print("  lower bound     : " + ", ".join(f"{e:.3f}" for e in study.lower_bound))
    return 0
