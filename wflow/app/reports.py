"""Reports of the ``wflow`` commands: report.json and report.md (no matplotlib here)."""

from __future__ import annotations

import platform
import time

import numpy as np

from .. import __version__
from ..io import StagedOutput

__all__ = ["render_report_md", "write_reports", "environment"]


def environment() -> dict:
    """Versions worth recording next to measured figures."""
    return {"wflow": __version__, "python": platform.python_version(), "numpy": np.__version__}


def write_reports(st: StagedOutput, report: dict, timings: dict, t_start: float) -> None:
    """Add timings and environment to ``report`` and stage report.json and report.md."""
    timings["total"] = time.perf_counter() - t_start
    report["timings_seconds"] = timings
    report["environment"] = environment()
    st.write_json("report.json", report)
    st.write_text("report.md", render_report_md(report))


def render_report_md(report: dict) -> str:
    """Human-readable markdown version of a demo, run or verify report."""
    lines = [f"# wflow {report.get('command', 'report')} report", ""]
    prob = report.get("problem")
    if prob:
        lines += [f"**Problem.** {prob.get('description', '')}", ""]
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in prob.items() if k != "description"]
        lines.append("")
    meas = report.get("measured")
    if meas:
        lines += ["## Measured", "", "| quantity | value |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in meas.items()]
        lines.append("")
    lines += ["## Checks", "", "| check | measured | | tolerance | result |", "|---|---:|:-:|---:|:-:|"]
    for c in report.get("checks", []):
        lines.append(
            f"| {c['name']} | {_fmt(c['measured'])} | {c['relation']} | {_fmt(c['tolerance'])} | "
            f"{'measured' if c['passed'] is None else ('PASS' if c['passed'] else 'FAIL')} |"
        )
    lines.append("")
    for c in report.get("checks", []):
        lines.append(f"- **{c['name']}**: {c.get('description') or c.get('formula', '')}")
    lines.append("")
    verdict = "all checks PASS" if report.get("all_passed") else "some checks FAIL"
    lines += [f"**Result: {verdict}.**", ""]
    if report.get("files"):
        lines += ["## Files", ""] + [f"- `{f}`" for f in report["files"]] + [""]
    if report.get("timings_seconds"):
        tm = ", ".join(f"{k} {v:.2f} s" for k, v in report["timings_seconds"].items())
        lines += [f"Timings: {tm}.", ""]
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
