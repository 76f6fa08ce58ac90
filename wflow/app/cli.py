"""The ``wflow`` command: ``demo``, ``run CONFIG.toml`` and ``verify``.

Exit codes: 0 success; 1 a verification check FAILED; 2 bad usage, an invalid configuration
(the message names the key), a file-system problem (the message names the path) or a memory
estimate beyond the limit — each found before the simulation wherever possible and reported
in one line; 3 an internal error (a bug: traceback printed); 130 interrupted (SIGINT), 143
terminated (SIGTERM) — nothing half-written in any case. Run as ``wflow ...`` (console script) or ``python -m wflow ...``. See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import time
import traceback

from .. import __version__
from ..io import (
    OutputError,
    StagedOutput,
    Terminated,
    check_output_dir,
    discard_stages,
    interrupt_handler,
    signals_received,
)
from ..verify.catalogue import run_catalogue
from .config import ConfigError, load_config
from .reports import render_report_md

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM


def _interactive() -> bool:
    """Progress bars only when a person is watching (stdout and stderr are terminals)."""
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _out_dir(value: str) -> str:
    if value.strip() == "":
        raise argparse.ArgumentTypeError("must be a non-empty directory name")
    return value


def _seed(value: str) -> int:
    try:
        seed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value!r}") from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {seed}")
    return seed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wflow",
        description=(
            "∞-curves of maximal slope (the limit of IFGSM), Wasserstein ∞-flows of particle "
            "measures, exact W∞ and adversarial attacks as flows."
        ),
        epilog="Exit codes: 0 ok, 1 a verification check failed, 2 bad usage, invalid config, "
        "file-system problem or memory limit, 3 internal error, 130/143 interrupted (nothing half-written).",
    )
    parser.add_argument("--version", action="version", version=f"wflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    out_help = ("output directory (default: ./wflow-out); written all-or-nothing, an existing one "
                "is replaced only if it holds a previous wflow run")
    overwrite_help = "replace --out even if it is a non-empty directory not written by wflow"

    p = sub.add_parser(
        "demo", help="run the main demo: a distributional attack as an ∞-flow, checked and plotted",
        description="Simulate the embedded demo, check the theorems on it and write figures, an "
        "animation (GIF), report.json and report.md to --out.",
    )
    p.add_argument("--out", type=_out_dir, default="wflow-out", help=out_help)
    p.add_argument("--overwrite", action="store_true", help=overwrite_help)
    p.add_argument("--quick", action="store_true", help="smaller problem (under 15 s)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random choices (default 0)")

    p = sub.add_parser(
        "run", help="run the simulation described by a TOML config",
        description="Run the simulation described by CONFIG (TOML: [potential], [initial], [flow], "
        "[output]) and write its figures, result.npz, report.json and report.md to --out. "
        "The config and --out are checked first; a problem exits with code 2.",
    )
    p.add_argument("config", metavar="CONFIG.toml", help="run configuration")
    p.add_argument("--out", type=_out_dir, default="wflow-out", help=out_help)
    p.add_argument("--overwrite", action="store_true", help=overwrite_help)

    p = sub.add_parser(
        "verify", help="run the verification catalogue: correct cases must pass, mutants must fail",
        description="Run wflow.verify's case catalogue with default (derived) tolerances: correct "
        "flows that must pass every check and deliberately wrong ones (mutants) that must be "
        "caught. Prints each case and the score caught/total; exits 1 unless every mutant is "
        "caught and every correct case passes.",
    )
    p.add_argument("--out", type=_out_dir, default=None,
                   help="also write verify.json and verify.md to this directory (all-or-nothing)")
    p.add_argument("--overwrite", action="store_true", help=overwrite_help)
    p.add_argument("--quick", action="store_true", help="fewer particles and step sizes")
    return parser


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------
def _cmd_demo(args) -> int:
    # imported here on purpose: the demo's modules load matplotlib, which `wflow verify` and
    # `wflow --help` must not pay for
    demo = importlib.import_module("wflow.app.demo")
    t0 = time.perf_counter()
    report = demo.run_demo(args.out, quick=args.quick, progress=_interactive(), seed=args.seed,
                           overwrite=args.overwrite)
    _print_checks(report["checks"])
    print(f"wrote {', '.join(report['files'])} to {os.path.abspath(args.out)} "
          f"in {time.perf_counter() - t0:.1f} s")
    return EXIT_OK if report["all_passed"] else EXIT_FAIL


def _cmd_run(args) -> int:
    cfg = load_config(args.config)  # ConfigError -> exit 2 before anything is written
    check_output_dir(args.out, overwrite=args.overwrite)  # OutputError -> exit 2, before the run
    run = importlib.import_module("wflow.app.run")  # loads matplotlib: see _cmd_demo
    print(f"wflow run: {cfg.source} -> {os.path.abspath(args.out)}", flush=True)
    report = run.run_config(cfg, args.out, progress=_interactive(), overwrite=args.overwrite)
    _print_checks(report["checks"])
    print(f"wrote {', '.join(report['files'])} to {os.path.abspath(args.out)}")
    return EXIT_OK if report["all_passed"] else EXIT_FAIL


def _cmd_verify(args) -> int:
    if args.out is not None:
        check_output_dir(args.out, overwrite=args.overwrite)
    t0 = time.perf_counter()
    cat = run_catalogue(quick=args.quick, progress=_interactive())
    elapsed = time.perf_counter() - t0
    print(cat.table(leaves=False))
    d = cat.details
    print(f"\nmutants caught: {d['score']}; correct cases passed: {d['correct_passed']}/{d['n_correct']} "
          f"({elapsed:.1f} s)")
    if args.out is not None:
        report = {
            "wflow_version": __version__,
            "command": "verify",
            "quick": args.quick,
            "score": d["score"],
            "checks": [{**c.to_dict(), "checks": []} for c in cat.checks],
            "all_passed": bool(cat.passed),
            "timings_seconds": {"total": elapsed},
        }
        with StagedOutput(args.out, overwrite=args.overwrite,
                          info={"command": "verify", "wflow_version": __version__}) as st:
            st.write_json("verify.json", report)
            st.write_text("verify.md", render_report_md(report))
    return EXIT_OK if cat.passed else EXIT_FAIL


def _print_checks(checks) -> None:
    for c in checks:
        m = "n/a" if c["measured"] is None else f"{c['measured']:.6g}"
        t = "n/a" if c["tolerance"] is None else f"{c['tolerance']:.6g}"
        verdict = "INFO" if c["passed"] is None else ("PASS" if c["passed"] else "FAIL")
        print(f"{verdict}  {c['name']}: {m} {c['relation']} {t}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and not isinstance(exc, OutputError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or text}"
    return " ".join(text.split())


def main(argv=None) -> int:
    """Entry point of the ``wflow`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    command = {"demo": _cmd_demo, "run": _cmd_run, "verify": _cmd_verify}[args.command]
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, interrupt_handler)
    seen = len(signals_received())
    try:
        code = command(args)
        late = signals_received()[seen:]  # a signal whose exception Python swallowed on the way
        if late:
            print(f"wflow: {'terminated' if late[-1] == signal.SIGTERM else 'interrupted'} "
                  "(the outputs had been written completely and are kept)", file=sys.stderr)
            return EXIT_TERMINATED if late[-1] == signal.SIGTERM else EXIT_INTERRUPTED
        return code
    except (ConfigError, OSError, MemoryError) as exc:
        # ConfigError names the key, OSError the path, a MemoryLimitError the estimate and knob
        print(f"wflow {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        discard_stages()
        print("wflow: terminated (no partial output was written)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        discard_stages()
        print("wflow: interrupted (no partial output was written)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug, not a failed check: keep exit 1 for "a check FAILED"
        traceback.print_exc()
        print(f"wflow {args.command}: internal error (no partial output was written); "
              "please report it with the traceback above", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
