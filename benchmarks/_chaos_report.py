"""The chaos harness's report: ``chaos.md`` (a table per fault, totals, memory) and ``chaos.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    """Write the report's tables from the ``chaos.json`` document ``doc``."""
    soak, lag, totals = doc["soak"], doc["lag_s"], doc["messages"]["totals"]
    lines = [
        "# Chaos and soak",
        "",
        f"Two sites bridged to a central Mosquitto (persistence on), {doc['topology']['publishers']} load "
        f"publishers, {doc['topology']['ingest_workers']} ingest workers on PostgreSQL; "
        f"{soak['minutes']} min at {soak['rate_msg_s']} msg/s"
        + (f" (80 % of the measured maximum, {doc['ramp']['max_rate']} msg/s)." if doc["ramp"] else " (set)."),
        f"Machine: {doc['machine']['cpus']} CPUs, {doc['machine']['platform']}. "
        "Repeat with `.venv/bin/python -m benchmarks.chaos`.",
        "",
        "## Messages",
        "",
        "| accepted by the queues | stored | lost | duplicated | refused by a full queue disk | order kept |",
        "|---:|---:|---:|---:|---:|:--|",
        f"| {totals['accepted']} | {totals['stored']} | {totals['lost']} | {totals['duplicated']} | "
        f"{totals['refused_by_queue']} | {'yes' if doc['order']['kept'] else 'no'} "
        f"({doc['order']['inversions']} inversions) |",
        "",
        f"End-to-end lag (received_at - sent_at) over the soak: p50 {lag['p50']} s, p99 {lag['p99']} s, "
        f"max {lag['max']} s; before the first fault p99 {lag['baseline_p99']} s.",
        "",
        "## Faults",
        "",
        f"Recovered: the first {3} seconds in a row after the fault cleared that store at least 90 % of "
        f"the offered rate with every row's lag under {lag['recovery_bound']} s.",
        "",
        "| fault | at (s) | outage (s) | recovered | recovery from the fault (s) | after it cleared (s) |",
        "|:--|---:|---:|:--|---:|---:|",
    ]
    for f in doc["faults"]:
        state = f"skipped: {f['skipped']}" if f["skipped"] else ("yes" if f["recovered"] else "no")
        lines.append(f"| {f['what']} | {f['at_s']} | {f['outage_s']} | {state} | {f['recovery_s']} | "
                     f"{f['recovery_after_clear_s']} |")
    lines += ["", "## Resident memory, second half of the soak", "",
              "Flat: the line fitted over the second half (since the process's last restart) grows less "
              "than max(8 MiB, 10 % of its median).", "",
              "| process | median (MiB) | slope (MiB/min) | growth (MiB) | flat |", "|:--|---:|---:|---:|:--|"]
    for role, m in doc["memory"].items():
        if m.get("flat") is None:
            lines.append(f"| {role} | - | - | - | too few samples ({m['samples']}) |")
        else:
            lines.append(f"| {role} | {m['median_mib']} | {m['slope_mib_per_min']} | {m['growth_mib']} | "
                         f"{'yes' if m['flat'] else 'no'}{' (restarted)' if m['restarted_in_window'] else ''} |")
    if doc["supervisor_restarts"]:
        lines += ["", "Processes that exited on their own and were restarted: "
                  + ", ".join(f"{r['role']} at {r['t_s']} s" for r in doc["supervisor_restarts"]) + "."]
    path.write_text("\n".join(lines) + "\n")


def write_plot(doc: dict[str, Any], path: Path) -> bool:
    """Plot throughput and lag over time with the faults marked, and RSS per process; ``False`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    s = doc["series"]
    fig, (ax1, ax3) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    t = list(range(len(s["rate"])))
    ax1.plot(t, s["rate"], color="tab:blue", lw=0.8, label="stored msg/s")
    ax1.axhline(doc["soak"]["rate_msg_s"], color="tab:blue", ls=":", lw=0.8, label="offered")
    ax1.set_ylabel("stored msg/s")
    ax2 = ax1.twinx()
    ax2.plot(t, s["lag_max"], color="tab:red", lw=0.8, label="max lag (s)")
    ax2.set_ylabel("max end-to-end lag (s)")
    ax2.set_yscale("symlog", linthresh=1.0)
    for f in doc["faults"]:
        if f["skipped"]:
            continue
        ax1.axvspan(f["at_s"], f["at_s"] + f["outage_s"], color="0.85")
        ax1.text(f["at_s"], ax1.get_ylim()[1] * 0.95, f["fault"], rotation=90, va="top", fontsize=7)
    ax1.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    ax1.set_title("Throughput and lag with faults (grey: outage)")
    by_role: dict[str, list[tuple[float, float]]] = {}
    for ts, role, mib in s["rss"]:
        by_role.setdefault(role, []).append((ts, mib))
    for role, pts in sorted(by_role.items()):
        ax3.plot([p[0] for p in pts], [p[1] for p in pts], lw=0.8, label=role)
    ax3.set_ylabel("RSS (MiB)")
    ax3.set_xlabel("seconds into the soak")
    ax3.set_yscale("log")
    ax3.legend(fontsize=6, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
