"""The campaign benchmark's statistics: experiments to a threshold (censored), best f2 at checkpoints, paired counts."""

from __future__ import annotations

import numpy as np

from campaign_lab import TARGETS

THRESHOLDS = (65.0, 75.0)
CHECKPOINTS = (16, 24, 40, 120)


def best_so_far(f2s: list[float]) -> np.ndarray:
    """Running maximum of f2 over experiments (-inf until the first success)."""
    return np.maximum.accumulate(np.asarray(f2s, float)) if len(f2s) else np.zeros(0)


def experiments_to(f2s: list[float], threshold: float, batch: int) -> float:
    """Experiments spent (whole rounds) until the best measured f2 reaches ``threshold``; inf if never."""
    hit = np.flatnonzero(best_so_far(f2s) >= threshold)
    return float((hit[0] // batch + 1) * batch) if len(hit) else float("inf")


def censored_quantiles(values: list[float], budget: int) -> dict:
    """Median and IQR with runs that never reached the threshold counted as beyond the budget."""
    v = np.asarray(values, float)
    sentinel = np.where(np.isfinite(v), v, budget + 1e6)
    q25, q50, q75 = np.percentile(sentinel, [25, 50, 75])
    show = lambda q: None if q > budget else float(q)  # noqa: E731
    return {"median": show(q50), "q25": show(q25), "q75": show(q75), "censored": int((~np.isfinite(v)).sum()), "runs": int(len(v))}


def _fmt(q: float | None, budget: int) -> str:
    return f">{budget}" if q is None else f"{q:.0f}"


def summarise(results: dict, strategies, targets, batch: int, rounds: int, ours: str = "ours") -> dict:
    """Per strategy (over every target and seed) and per target: the figures the README quotes, and paired counts for ``ours``."""
    budget = batch * rounds

    def stats(runs):
        out = {}
        for threshold in THRESHOLDS:
            out[f"experiments_to_{threshold:.0f}"] = censored_quantiles([experiments_to(f, threshold, batch) for f in runs], budget)
        for n in CHECKPOINTS:
            if n <= budget:
                out[f"median_best_f2_after_{n}"] = float(np.median([best_so_far(f)[n - 1] for f in runs]))
        return out

    summary = {"overall": {}, "per_target": {}}
    for s in strategies:
        runs = [results[(s, t, seed)] for (ss, t, seed) in results if ss == s]
        summary["overall"][s] = stats(runs)
        summary["per_target"][s] = {t: stats([results[k] for k in results if k[0] == s and k[1] == t]) for t in targets}
    if "random" in strategies and "ours" in strategies:
        for threshold in THRESHOLDS:
            key = f"experiments_to_{threshold:.0f}"
            r, o = summary["overall"]["random"][key]["median"], summary["overall"]["ours"][key]["median"]
            if o is None:
                factor = None
                text = "n/a (ours censored)"
            elif r is None:
                factor = budget / o
                text = f">= {factor:.1f} (random's median is beyond the {budget}-experiment budget)"
            else:
                factor = r / o
                text = f"{factor:.1f}"
            summary[f"acceleration_{threshold:.0f}"] = {"factor": factor, "text": text, "lower_bound": r is None}
    summary["paired"] = {o: {b: paired_counts(results, o, b, batch, rounds) for b in strategies if b != o}
                         for o in (ours, f"{ours}_prior") if o in strategies}
    return summary


def print_tables(summary: dict, strategies, targets, batch: int, rounds: int) -> None:
    budget = batch * rounds
    header = f"{'strategy':10s} {'exp. to f2>=65: median [IQR] (censored)':>42s} {'exp. to f2>=75: median [IQR] (censored)':>42s}"
    header += "".join(f" {'best f2 @' + str(n):>12s}" for n in CHECKPOINTS if n <= budget)

    def row(name, st):
        cells = []
        for threshold in THRESHOLDS:
            q = st[f"experiments_to_{threshold:.0f}"]
            cells.append(f"{_fmt(q['median'], budget)} [{_fmt(q['q25'], budget)}-{_fmt(q['q75'], budget)}] ({q['censored']}/{q['runs']})")
        line = f"{name:10s} {cells[0]:>42s} {cells[1]:>42s}"
        line += "".join(f" {st[f'median_best_f2_after_{n}']:12.1f}" for n in CHECKPOINTS if n <= budget)
        return line

    print(f"\nAll targets ({len(targets)} targets, batch {batch}, {rounds} rounds = {budget} experiments per run)")
    print(header)
    for s in strategies:
        print(row(s, summary["overall"][s]))
    for t in targets:
        print(f"\n{t}: {TARGETS[t][2]}  (times {TARGETS[t][0]} h, release {TARGETS[t][1]} %)")
        print(header)
        for s in strategies:
            print(row(s, summary["per_target"][s][t]))
    for threshold in THRESHOLDS:
        key = f"acceleration_{threshold:.0f}"
        if key in summary:
            print(f"\nacceleration vs random at f2 >= {threshold:.0f} (median experiments, random / ours): {summary[key]['text']}")
    print()
    print_paired(summary)


def paired_counts(results: dict, ours: str, baseline: str, batch: int, rounds: int) -> dict:
    """Per (target, seed) run of both strategies: who needed fewer experiments to f2 >= 65, who was higher at 24 and 40.

    A run that never reached 65 counts as beyond the budget (two such runs are equal).
    """
    budget = batch * rounds
    pairs = [(results[k], results[(baseline, k[1], k[2])]) for k in results if k[0] == ours and (baseline, k[1], k[2]) in results]
    out = {"pairs": len(pairs)}
    to_65 = [(experiments_to(a, 65.0, batch), experiments_to(b, 65.0, batch)) for a, b in pairs]
    out["experiments_to_65"] = {"fewer": int(sum(a < b for a, b in to_65)), "equal": int(sum(a == b for a, b in to_65)),
                                "more": int(sum(a > b for a, b in to_65))}
    for n in (24, 40):
        if n <= budget:
            at = [(best_so_far(a)[n - 1], best_so_far(b)[n - 1]) for a, b in pairs]
            out[f"best_f2_at_{n}"] = {"higher": int(sum(a > b for a, b in at)), "equal": int(sum(a == b for a, b in at)),
                                      "lower": int(sum(a < b for a, b in at))}
    return out


def print_paired(summary: dict) -> None:
    """The paired counts: ours (and ours with the prior) against each other strategy."""
    for ours, against in summary.get("paired", {}).items():
        for baseline, counts in against.items():
            _print_pair(ours, baseline, counts)


def _print_pair(ours: str, baseline: str, counts: dict) -> None:
    to_65 = counts["experiments_to_65"]
    cells = [f"to f2>=65: fewer {to_65['fewer']} / equal {to_65['equal']} / more {to_65['more']}"]
    for n in (24, 40):
        c = counts.get(f"best_f2_at_{n}")
        if c:
            cells.append(f"best f2 @{n}: higher {c['higher']} / equal {c['equal']} / lower {c['lower']}")
    print(f"paired, {ours} vs {baseline} ({counts['pairs']} runs): " + "; ".join(cells))
