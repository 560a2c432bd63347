"""Results of the load benchmark: per-rate summaries, tables, loop lag, the sustained rate."""

from __future__ import annotations

import argparse
from typing import Any

from bench.common import Samples
from bench.mix import WEIGHTS
from bench.openloop import merge, summarize


def lag_summary(samples: list[list[float]], *windows: float) -> dict[str, Any]:
    """p50/p99/max of the loop-lag probe's overshoots (ms) inside the (t0, t1, t0, t1, ...) windows."""
    pairs = list(zip(windows[::2], windows[1::2], strict=True))
    lags = sorted(lag for at, lag in samples if any(t0 <= at <= t1 for t0, t1 in pairs))
    if not lags:
        return {"samples": 0}

    def pct(p: float) -> float:
        return lags[min(len(lags) - 1, int(p / 100 * len(lags)))]
    return {"samples": len(lags), "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": lags[-1],
            "over_20ms": sum(1 for lag in lags if lag > 20)}


def gc_summary(pauses: list[list[float]], *windows: float) -> dict[str, Any]:
    """Garbage-collection pauses (>= 1 ms) inside the windows: how many, the longest, and how many of the oldest generation."""
    pairs = list(zip(windows[::2], windows[1::2], strict=True))
    inside = [p for p in pauses if any(t0 <= p[0] <= t1 for t0, t1 in pairs)]
    return {"gc_pauses": len(inside), "gc_max_ms": max((p[2] for p in inside), default=0),
            "gc_gen2": sum(1 for p in inside if p[1] == 2)}


def _table(merged: dict[str, Samples]) -> dict[str, Any]:
    rows = {name: summarize(merged[name]) for name in WEIGHTS if name in merged}
    rows["all"] = summarize(merge([{"all": s} for s in merged.values()])["all"])
    return rows


def rate_result(rate: float, merged: dict[str, dict[str, Samples]], phases: list[dict], outputs: list[dict],
                args: argparse.Namespace) -> dict[str, Any]:
    """One rate's tables (ours, bare), CPU per answered request, loop lag, seeding and exactly-once checks."""
    result: dict[str, Any] = {"rate": rate, "processes": args.processes, "seconds_per_server": args.seconds}
    for role, samples in merged.items():
        table = _table(samples)
        result[role] = table
        mine = [p for p in phases if p["role"] == role]
        cpu = sum(v for p in mine for k, v in p["cpu_s"].items() if k.startswith(f"{role}-") and "balancer" not in k)
        result[f"{role}_cpu_ms_per_answer"] = round(1000 * cpu / max(1, table["all"]["ok"]), 1)
        result[f"{role}_server_cpu_share"] = round(cpu / (args.seconds * args.processes), 2)
        balancer = sum(v for p in mine for k, v in p["cpu_s"].items() if k == f"{role}-balancer")
        if balancer:
            result[f"{role}_balancer_cpu_share"] = round(balancer / args.seconds, 3)
    windows = [t for p in phases if p["role"] == "ours" for t in (p["t0"], p["t1"])]
    result["lag_per_process"] = [lag_summary(o["lag"], *windows) | gc_summary(o.get("gc", []), *windows)
                                 for o in outputs]
    result["checks_per_process"] = [o["checks"] | {"credited_invoices": len(o["checks"]["credited_invoices"])}
                                    for o in outputs]
    result["seed"] = [{"seconds": o["seed_s"], "audit": o["seed_audit"], "counts": o["seeded"]} for o in outputs]
    if len(outputs) > 1:
        credited = [set(o["checks"]["credited_invoices"]) for o in outputs]
        result["invoices_credited_in_both_stores"] = len(set.intersection(*credited))
    result["phases"] = phases
    result["sustained"] = sustained(result["ours"], args.target_p95_ms, args.login_p95_ms)
    return result


def sustained(table: dict[str, Any], target_ms: float, login_ms: float) -> bool:
    """Every endpoint under target_ms at p95 (login: under login_ms; bcrypt 12 alone takes ~0.5 s) with under 1% errors."""
    return all(row["p95_ms"] is not None and row["p95_ms"] < (login_ms if name == "login" else target_ms)
               and row["errors"] <= 0.01 * row["sent"] for name, row in table.items())


def sustained_rate(rates: list[dict[str, Any]]) -> float | None:
    """The highest measured rate that was sustained (see `sustained`)."""
    ok = [r["rate"] for r in rates if r["sustained"]]
    return max(ok) if ok else None


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return f"{'':>6}{'':>6}{'':>5}{'':>8}{'':>8}{'':>8}"
    f = lambda v: "-" if v is None else f"{v:.0f}" if v >= 100 else f"{v:.1f}"  # noqa: E731
    return f"{row['sent']:>6}{row['ok']:>6}{row['errors']:>5}{f(row['p50_ms']):>8}{f(row['p95_ms']):>8}{f(row['p99_ms']):>8}"


def print_rate(r: dict[str, Any], calls: dict[str, dict[str, int]]) -> None:
    """One rate as a table: ours and bare side by side per endpoint."""
    loads = [p["loadavg_before"][0] for p in r["phases"]] + [p["loadavg_after"][0] for p in r["phases"]]
    print(f"\n== {r['rate']:g} req/s, {r['processes']} process(es), {r['seconds_per_server']:g} s per server; "
          f"load average (1 min) during the run {min(loads)}-{max(loads)} on 2 cores")
    head = f"{'sent':>6}{'ok':>6}{'err':>5}{'p50':>8}{'p95':>8}{'p99':>8}"
    print(f"{'endpoint':<11}{'calls':>6} | ours {head} | bare {head}")
    for name in [*WEIGHTS, "all"]:
        if name not in r["ours"]:
            continue
        c = calls.get(name)
        n = f"{c['answer']}+{c['background']}" if c and c["background"] else str(c["answer"]) if c else ""
        print(f"{name:<11}{n:>6} | ours {_cell(r['ours'][name])} | bare {_cell(r.get('bare', {}).get(name))}")
    cpu = f"CPU per answered request: ours {r['ours_cpu_ms_per_answer']} ms"
    if "bare" in r:
        cpu += f", bare {r['bare_cpu_ms_per_answer']} ms"
    print(cpu + f"; our server busy {r['ours_server_cpu_share']:.0%} of a core per process")
    for i, lag in enumerate(r["lag_per_process"]):
        print(f"loop lag (ours, process {i}): {lag}")
    for i, check in enumerate(r["checks_per_process"]):
        print(f"purchases (ours, process {i}): {check['purchases']} recorded, {check['credited_purchases']} credited, "
              f"{len(check['invoices_credited_more_than_once'])} credited twice, audit ok {check['audit_ok']} "
              f"({check['owners_audited']} owners, {check['audit_pending']} pending)")
    if "invoices_credited_in_both_stores" in r:
        print(f"invoices credited in both processes' separate stores: {r['invoices_credited_in_both_stores']}")
    print(f"sustained: {r['sustained']}")


def print_storm(s: dict[str, Any]) -> None:
    """The login storm's loop lag and throughput."""
    prof = s["profile"] or {}
    print(f"\n== login storm: {s['clients']} clients, bcrypt 12, {s['users']} users seeded, {s['seconds']:g} s; "
          f"load average {s['loadavg'][0][0]}-{s['loadavg'][1][0]}")
    print(f"loop lag: {s['lag']}")
    reads = f"; profile reads alongside: p50 {prof['p50_ms']} p99 {prof['p99_ms']} ms, errors {prof['errors']}" if prof else ""
    print(f"logins ok/s {s['logins_ok_per_s']} {s['login_statuses']}, server CPU {s['server_cpu_s']} s" + reads)
