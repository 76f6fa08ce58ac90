"""The ``wflow`` command: ``demo``, ``run CONFIG.toml`` and ``verify``.

Exit codes: 0 success; 1 a verification check FAILED; 2 bad usage or an invalid
configuration (the message names the key), detected before anything is written.
Run as ``wflow ...`` (console script) or ``python -m wflow.cli ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import __version__

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _interactive() -> bool:
    """Progress bars only when a person is watching (stdout and stderr are terminals)."""
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wflow",
        description=(
            "∞-curves of maximal slope (the limit of IFGSM), Wasserstein ∞-flows of particle "
            "measures, exact W∞ and adversarial attacks as flows."
        ),
        epilog="Exit codes: 0 ok, 1 a verification check failed, 2 bad usage or invalid config.",
    )
    parser.add_argument("--version", action="version", version=f"wflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "demo", help="run the main demo: a distributional attack as an ∞-flow, checked and plotted",
        description="Simulate the embedded demo, check the theorems on it and write figures, an "
        "animation (GIF), report.json and report.md to --out.",
    )
    p.add_argument("--out", default="wflow-out", help="output directory (default: ./wflow-out)")
    p.add_argument("--quick", action="store_true", help="smaller problem (under 15 s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random choices (default 0)")

    p = sub.add_parser(
        "run", help="run the simulation described by a TOML config",
        description="Run the simulation described by CONFIG (TOML: [potential], [initial], [flow], "
        "[output]) and write its figures, result.npz, report.json and report.md to --out. "
        "The config is validated first; an invalid key exits with code 2.",
    )
    p.add_argument("config", metavar="CONFIG.toml", help="run configuration")
    p.add_argument("--out", default="wflow-out", help="output directory (default: ./wflow-out)")

    p = sub.add_parser(
        "verify", help="run the verification catalogue: correct cases must pass, mutants must fail",
        description="Run wflow.verify's case catalogue with default (derived) tolerances: correct "
        "flows that must pass every check and deliberately wrong ones (mutants) that must be "
        "caught. Prints each case and the score caught/total; exits 1 unless every mutant is "
        "caught and every correct case passes.",
    )
    p.add_argument("--out", default=None, help="also write verify.json and verify.md to this directory")
    p.add_argument("--quick", action="store_true", help="fewer particles and step sizes")
    return parser


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------
def _cmd_demo(args) -> int:
    from .demo import run_demo

    t0 = time.perf_counter()
    report = run_demo(args.out, quick=args.quick, progress=_interactive(), seed=args.seed)
    _print_checks(report["checks"])
    print(f"wrote {', '.join(report['files'])} to {os.path.abspath(args.out)} "
          f"in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK if report["all_passed"] else EXIT_FAIL


def _cmd_run(args) -> int:
    from .config import load_config, run_config

    cfg = load_config(args.config)  # ConfigError -> exit 2 before anything is written
    report = run_config(cfg, args.out, progress=_interactive())
    _print_checks(report["checks"])
    print(f"wrote {', '.join(report['files'])} to {os.path.abspath(args.out)}")
    return EXIT_OK if report["all_passed"] else EXIT_FAIL


def _cmd_verify(args) -> int:
    from .verify.catalogue import run_catalogue

    t0 = time.perf_counter()
    cat = run_catalogue(quick=args.quick, progress=_interactive())
    elapsed = time.perf_counter() - t0
    print(cat.table(leaves=False))
    d = cat.details
    print(f"\nmutants caught: {d['score']}; correct cases passed: {d['correct_passed']}/{d['n_correct']} "
          f"({elapsed:.1f} s)")
    if args.out is not None:
        from .config import StagedOutput
        from .demo import render_report_md

        report = {
            "wflow_version": __version__,
            "command": "verify",
            "quick": args.quick,
            "score": d["score"],
            "checks": [{**r.to_dict(), "name": name, "checks": []} for name, r in
                       ((c.name, c) for c in cat.checks)],
            "all_passed": bool(cat.passed),
            "timings_seconds": {"total": elapsed},
        }
        with StagedOutput(args.out) as st:
            st.write_json("verify.json", report)
            st.write_text("verify.md", render_report_md(report))
    return EXIT_OK if cat.passed else EXIT_FAIL


def _print_checks(checks) -> None:
    for c in checks:
        m = "n/a" if c["measured"] is None else f"{c['measured']:.6g}"
        t = "n/a" if c["tolerance"] is None else f"{c['tolerance']:.6g}"
        verdict = "INFO" if c["passed"] is None else ("PASS" if c["passed"] else "FAIL")
        print(f"{verdict}  {c['name']}: {m} {c['relation']} {t}")


def main(argv=None) -> int:
    """Entry point of the ``wflow`` command; returns the exit code."""
    from .config import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return {"demo": _cmd_demo, "run": _cmd_run, "verify": _cmd_verify}[args.command](args)
    except ConfigError as exc:
        print(f"wflow {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("wflow: interrupted (no partial output was written)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
