"""The benchmark's report: the CPU budget derived from the phases, the table, the JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from bench.outbox_app.measuring import cpu_ms

Write = Callable[[str], None]


def cpu_budget(report: dict) -> dict | None:
    """The CPU the pipeline needs per event and at each offered rate, from the phases' costs."""
    paths = report.get("latency", {}).get("paths", {})
    if "relay" not in report or "consumers" not in report or not paths:
        return None
    path = paths.get("foreground") or next(iter(paths.values()))
    producer = next(iter(path["rates"].values()))["producer"]
    parts = {
        "producer": cpu_ms(producer["cpu_ms_per_event"]),
        "relay": cpu_ms(report["relay"]["cpu_ms_per_event"]),
        "consumers": sum(
            cpu_ms(g["cpu_ms_per_event"]) for g in report["consumers"]["groups"].values()
        ),
    }
    per_event = sum(parts.values())
    cores = os.cpu_count() or 1
    return {
        "how": "client + PostgreSQL backend CPU per event at full batches: producer from the "
        "latency phase's first row, relay and bench consumers from the throughput phases; "
        "Redis, Celery, idle readers and the shop's groups skipping the entries not counted",
        "ms_per_event": {k: round(v, 3) for k, v in parts.items()},
        "total_ms_per_event": round(per_event, 3),
        "cores_needed": {rate: round(per_event * float(rate) / 1000, 2) for rate in path["rates"]},
        "cores": cores,
        "max_rate_on_all_cores": round(cores * 1000 / per_event),
    }


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value}"


def _cpu(figures: dict) -> str:
    c = figures["cpu_ms_per_event"]
    server = "-" if c["postgres"] is None else f"{c['postgres']:.3f}"
    return f"{c['client']:.3f} + {server}"


def print_table(report: dict, w: Write) -> None:
    m, p = report["machine"], report["params"]
    w("")
    w(
        f"outbox benchmark: {m['cores']} cores, Python {m['python']}, "
        f"PostgreSQL {m['postgres'].split()[0]} "
        f"(synchronous_commit={m['postgres_settings']['synchronous_commit']}), "
        f"Redis {m['redis']}; load average {m['load_average_at_start'][0]} at the start, "
        f"{report['load_average_at_end'][0]} at the end"
    )
    w(
        f"payload ~{p['payload_bytes']} B, {p['partitions']} partitions, bench groups "
        f"{', '.join(p['groups'])} (all groups: {', '.join(p['all_groups'])})"
    )
    phases = ", ".join(f"{name} {s:g}" for name, s in p["phase_s"].items())
    w(f"wall {p['wall_s']} s ({phases})")
    _throughput(report, w)
    _latency(report, w)
    _flat_cost(report, w)
    _baselines(report, w)


def _throughput(report: dict, w: Write) -> None:
    if "relay" not in report and "consumers" not in report:
        return
    p = report["params"]
    title = f"throughput, partition {p['throughput_partition']} of {p['partitions']}"
    w("")
    w(f"{title:<34}{'batch':>6}{'events':>8}{'ev/s':>8}  {'cpu ms/ev':<15} runs")
    if "relay" in report:
        for key, label in (("relay", "relay (relay_partition)"), ("raw", "raw psycopg + redis-py")):
            r = report[key]
            runs = " ".join(str(x) for x in r["runs_ev_s"])
            w(
                f"{label:<34}{r['batch_size']:>6}{r['events']:>8}{r['median_ev_s']:>8}  "
                f"{_cpu(r):<15} {runs}"
            )
        pairs = " ".join(f"{x:.2f}" for x in report["pair_ratios"])
        w(
            f"{'relay / raw (medians)':<34}{'':>14}{report['ratio']:>8.2f}  target >= 0.80; "
            f"run by run: {pairs}"
        )
        w(
            f"  relay SELECT plan ({report['relay']['events']} unpublished): {report['relay']['select_plan']}"
        )
    if "consumers" in report:
        c = report["consumers"]
        for group, figures in c["groups"].items():
            w(
                f"{'consume ' + group:<34}{c['batch_size']:>6}{c['events']:>8}"
                f"{figures['ev_s']:>8}  {_cpu(figures):<15} per handler run"
            )
    w("  (cpu ms/ev: this process + its PostgreSQL backend; relay and raw: medians of the runs)")


def _latency(report: dict, w: Write) -> None:
    if "latency" not in report:
        return
    lat = report["latency"]
    w("")
    w(
        f"commit-to-handled latency, ms, open loop, {lat['duration_s']:g} s per offered rate "
        "(events over all partitions)"
    )
    w(
        f"{'path / ev/s / group':<28}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}"
        f"{'handled':>9}{'lost':>6}{'dup':>5}"
    )
    for name, path in lat["paths"].items():
        for rate, row in path["rates"].items():
            for group, g in row["groups"].items():
                w(
                    f"{f'{name} / {rate} / {group}':<28}{g['p50']:>8.1f}{g['p95']:>8.1f}"
                    f"{g['p99']:>8.1f}{g['max']:>8.1f}{g['handled']:>9}{g['lost']:>6}"
                    f"{g['duplicates']:>5}"
                )
    for name, path in lat["paths"].items():
        w(f"  {name}: {path['how']}")
        for rate, row in path["rates"].items():
            prod = row["producer"]
            stages = [
                f"commit->XADD p50 {row['relay_stage_ms']['p50']:.1f} "
                f"p99 {row['relay_stage_ms']['p99']:.1f}"
            ]
            for group, g in row["groups"].items():
                c = g["consumer_stage_ms"]
                stages.append(f"XADD->{group} p50 {c['p50']:.1f} p99 {c['p99']:.1f}")
            w(
                f"  {name} @ {rate}: producer {prod['achieved_rate']} ev/s ({prod['threads']} "
                f"threads, lag p99 {prod['lag_p99_ms']} ms, {_cpu(prod)} ms cpu/ev); "
                f"pipeline {row['pipeline_cpu_ms_per_event']} + "
                f"{_or_dash(row['readers_postgres_cpu_ms_per_event'])} ms cpu/ev (processes + "
                f"their PostgreSQL sessions); load average after {row['load_average_after'][0]}"
            )
            w(f"  {name} @ {rate}: relay SELECT plan afterwards: {row['relay_select_plan']}")
            w(f"  {name} @ {rate}: stages (ms): {'; '.join(stages)}")
        tasks = ", ".join(f"{k} {v}" for k, v in path["celery_tasks"].items()) or "none"
        w(
            f"  {name}: Celery tasks run: {tasks}; events the beat's poll moved: "
            f"{path['moved_by_poll']}; warning/error log lines: {path['log_problems']}"
        )
        for line in path["log_problem_lines"]:
            w(f"    {line[:160]}")
    if "cpu_budget" in report:
        b = report["cpu_budget"]
        parts = ", ".join(f"{k} {v:.2f}" for k, v in b["ms_per_event"].items())
        cores = ", ".join(f"{v} at {k} ev/s" for k, v in b["cores_needed"].items())
        w(
            f"  cpu per event at full batches (throughput phases, with PostgreSQL): {parts} = "
            f"{b['total_ms_per_event']:.2f} ms; cores needed: {cores} (of {b['cores']}; all "
            f"cores would carry ~{b['max_rate_on_all_cores']} ev/s). The paths' own cpu/ev above "
            "(small batches, idle readers, the shop's groups) is what they really used."
        )


def _flat_cost(report: dict, w: Write) -> None:
    if "flat_cost" not in report:
        return
    f = report["flat_cost"]
    sizes = ", ".join(f"{table} {size}" for table, size in f["table_sizes"].items())
    w("")
    w(
        f"flat cost: {f['retained_events']:,} published events retained, "
        f"{f['retained_inbox_rows']:,} inbox rows (filled, vacuumed, checkpointed in "
        f"{f['fill_s']} s; {sizes})"
    )
    e, full, r = f["empty"], f["full"], f["ratios"]
    before, after = f["empty_before"], f["empty_after"]
    w(
        f"{'':<22}{'ev/s empty':>11}{'full':>7}{'ratio':>7}"
        f"{'cpu ms/ev empty':>17}{'full':>7}{'ratio':>7}   ev/s empty before / after"
    )
    for name in e["ev_s"]:
        label = "relay (median)" if name == "relay" else f"consume {name}"
        w(
            f"{label:<22}{e['ev_s'][name]:>11.0f}{full['ev_s'][name]:>7}"
            f"{r['ev_s'][name]:>7.2f}{e['cpu_ms_per_event'][name]:>17.3f}"
            f"{full['cpu_ms_per_event'][name]:>7.3f}{r['cpu_ms_per_event'][name]:>7.2f}"
            f"   {before['ev_s'][name]} / {after['ev_s'][name]}"
        )
    w(
        f"  relay SELECT plan: empty: {before['relay_select_plan']}; "
        f"full: {full['relay_select_plan']}"
    )
    w(f"  target {f['target']}")


def _baselines(report: dict, w: Write) -> None:
    if "baselines" not in report:
        return
    b = report["baselines"]
    x, t = b["xadd_to_xreadgroup_ms"], b["commit_two_rows_ms"]
    w("")
    w(f"{'baselines, ms':<34}{'p50':>8}{'p99':>8}")
    w(f"{'XADD -> XREADGROUP (blocked)':<34}{x['p50']:>8.3f}{x['p99']:>8.3f}")
    w(
        f"{'2-row transaction (psycopg)':<34}{t['transaction']['p50']:>8.3f}"
        f"{t['transaction']['p99']:>8.3f}"
    )
    w(f"{'  of which COMMIT':<34}{t['commit_only']['p50']:>8.3f}{t['commit_only']['p99']:>8.3f}")
