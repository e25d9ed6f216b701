"""A/B table of learning-check runs (benchmarks/learning_check.py task runs): each arm at equal updates and at equal
wall-clock time, with its whole evaluation curve saved as raw rows and plotted against updates.

Returns are normalised per arm, (R − random) / (expert − random), with the random policy and the scripted expert
measured in that arm's own run dir: arms with another action repeat or episode length collect rewards on another
scale (a repeat of 2 sums two frames' rewards per decision), so raw returns do not compare. The critic lag comes from
`benchmarks/diagnose.py RUN > RUN/diagnose.json` where that was run (critic value ÷ real discounted return-to-go on
held-out episodes, against the run's own discount).

    python benchmarks/ab_table.py base=runs/A mwm=runs/B --out benchmarks/results/learning_efficiency --name group1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from learning_check import task_curve

from lamp.errors import UsageError


def load_arm(logdir: Path) -> dict[str, Any]:
    """The run's evaluation rows (with normalised returns), its reference policies and its diagnostics."""
    refs_path = logdir / "reference_policies.json"
    if not refs_path.is_file() or not (logdir / "metrics.jsonl").is_file():
        raise UsageError(f"'{logdir}' is not a learning-check run dir (no reference_policies.json or metrics.jsonl)")
    refs = json.loads(refs_path.read_text())
    low, high = refs["random_policy"]["return"], refs["scripted_expert"]["return"]
    rows = task_curve(logdir / "metrics.jsonl")
    timed = any("hours" in row for row in rows)  # runs started before progress/hours existed have no wall time
    for row in rows:
        row.setdefault("updates", 0)  # the evaluation before training (step 0) is logged before any update
        if timed:
            row.setdefault("hours", 0.0)
        for key in ("eval/return", "eval/return_sample"):
            if key in row:
                row[key.replace("return", "norm_return")] = round((row[key] - low) / max(high - low, 1e-9), 4)
    diag_path = logdir / "diagnose.json"
    diag = {}
    if diag_path.is_file():
        try:
            lines = [json.loads(x) for x in diag_path.read_text().splitlines() if x.strip().startswith("{")]
        except json.JSONDecodeError as e:
            raise UsageError(f"{diag_path} is not JSON lines ({e.msg}, line {e.lineno}); re-run diagnose.py") from None
        diag = lines[-1] if lines else {}
    return {"rows": rows, "references": refs, "diagnose": diag, "logdir": str(logdir)}


# Evaluations come every few thousand steps, so two arms rarely reach one wall time exactly: an evaluation up to 5%
# past the common budget still counts as "at" it (the table prints each row's own updates and hours).
TOLERANCE = 1.05


def at_or_before(rows: list[dict[str, Any]], key: str, limit: float) -> dict[str, Any] | None:
    """The last evaluation whose `key` (updates, hours) does not exceed `limit` (by more than the tolerance)."""
    eligible = [r for r in rows if r.get(key, 0) <= limit * TOLERANCE + 1e-9]
    return eligible[-1] if eligible else None


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def critic_lag(diag: dict[str, Any]) -> float | None:
    value, real = diag.get("value_first_half"), diag.get("real_return_to_go_first_half")
    if value is None or not real:
        return None
    return round(value / real, 3)


def table(arms: dict[str, dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Markdown table and its rows: each arm at the largest update count and wall time that every arm reached."""
    budgets = {}
    for key in ("updates", "hours"):
        if all(any(key in r for r in arm["rows"]) for arm in arms.values()):  # else no common budget: no such rows
            budgets[key] = min(max(r.get(key, 0) for r in arm["rows"]) for arm in arms.values())
    out: list[dict[str, Any]] = []
    lines = [
        "| arm | at | updates | env steps | frames | hours | eval success | sampled success | norm. return "
        "| max success (updates) | critic value / return-to-go |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in arms.items():
        best = max(arm["rows"], key=lambda r: (r["success_rate"], -r["updates"]), default=None)
        peak = "–" if best is None else f"{best['success_rate']:.0%} ({best['updates']})" if best["updates"] else "0%"
        for key in budgets:
            row = at_or_before(arm["rows"], key, budgets[key])
            if row is None:
                continue
            record = {
                "arm": name,
                "equal": key,
                "budget": budgets[key],
                **row,
                "critic_lag": critic_lag(arm["diagnose"]),
            }
            out.append(record)
            lines.append(
                f"| {name} | equal {key} | {row.get('updates', '?')} | {row['env_steps']:,} | {row.get('frames', '?')} "
                f"| {row.get('hours', '?')} | {row['success_rate']:.0%} "
                f"| {percent(row.get('eval/success_sample'))} "
                f"| {row['eval/norm_return']:.3f} "
                f"| {peak} | {record['critic_lag'] if record['critic_lag'] is not None else '–'} |"
            )
    return "\n".join(lines), out


def plot(arms: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    from lamp.visualize import plot_eval_curves

    succ = {n: [(r["updates"], r["success_rate"]) for r in a["rows"]] for n, a in arms.items()}
    ret = {
        n: [(r["updates"], r["eval/norm_return"]) for r in a["rows"] if "eval/norm_return" in r]
        for n, a in arms.items()
    }
    refs = {
        "random_policy": {"success_rate": 0.0, "return": 0.0},
        "scripted_expert": {"success_rate": 1.0, "return": 1.0},
    }
    plot_eval_curves(succ, ret, refs, path, title, xlabel="updates (return: normalised, random 0, expert 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arms", nargs="+", metavar="NAME=LOGDIR")
    parser.add_argument("--out", default=None, help="folder for NAME.md, NAME.jsonl (raw rows) and NAME.png")
    parser.add_argument("--name", default="ab", help="file stem of the outputs")
    parser.add_argument("--task", default="push_button")
    args = parser.parse_args()
    arms = {}
    for item in args.arms:
        if "=" not in item:
            raise UsageError(f"arm {item!r} has no '='; write NAME=LOGDIR")
        name, logdir = item.split("=", 1)
        if name in arms:
            raise UsageError(f"arm name {name!r} is given twice; name each arm once")
        arms[name] = load_arm(Path(logdir).expanduser())
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out '{args.out}' is a file, not a folder; choose another --out")
    text, rows = table(arms)
    print(text)
    if args.out:
        from lamp.atomic import atomic_write_bytes

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / f"{args.name}.md", (text + "\n").encode())
        raw = [json.dumps({"arm": n, **r}) for n, a in arms.items() for r in a["rows"]]
        raw += [
            json.dumps({"arm": n, "references": a["references"], "diagnose": a["diagnose"]}) for n, a in arms.items()
        ]
        atomic_write_bytes(out / f"{args.name}.jsonl", ("\n".join(raw) + "\n").encode())
        plot(arms, out / f"{args.name}.png", args.task)
        print(json.dumps({"table": str(out / f"{args.name}.md"), "rows": len(rows)}))


if __name__ == "__main__":
    try:
        main()
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
