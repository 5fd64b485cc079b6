#!/usr/bin/env python3
"""Writes the evidence write-up (Markdown, to stdout) from scripts/evidence.sh's comparisons
(OUT/nN/report.json, one per budget N) and, with --loop DIR, a prs loop directory's summary.json.
Every figure is read from those files; nothing is typed in by hand.

  python3 scripts/evidence.py runs/evidence [--loop runs/loop-refiner [runs/loop-refiner-peers]] > docs/evidence.md
"""
import argparse, glob, json, os, random, re


def ci(i):
    return f"{i['mean']:.3f} [{i['low']:.3f}, {i['high']:.3f}]"


def signed(i):
    return f"{i['mean']:+.3f} [{i['low']:+.3f}, {i['high']:+.3f}]"


def verdict(i):
    if i["low"] > 0:
        return "above zero"
    if i["high"] < 0:
        return "below zero"
    return "includes zero"


def rate(f):
    c = f.get("success_rate_ci") or [f["success_rate"], f["success_rate"]]
    return f"{100 * f['success_rate']:.1f}% [{100 * c[0]:.1f}, {100 * c[1]:.1f}]"


def change(f):
    c = f.get("mean_reward_change_ci") or [f["mean_reward_change"]] * 2
    return f"{f['mean_reward_change']:+.3f} [{c[0]:+.3f}, {c[1]:+.3f}]"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def label_name(label):
    if label == "prs":
        return "PRS (N/2 + N/2)"
    if label.startswith("prs-") and label[4:].replace("-", "").isdigit():
        return "PRS, 4 layers (N/4 each)"
    if label == "prs+verifier":
        return "PRS, verifier feedback"
    return {"rand": "Rand", "prand": "PRand"}.get(label, label)


def comparisons(out):
    found = {}
    for path in glob.glob(os.path.join(out, "n*", "report.json")):
        m = re.search(r"n(\d+)$", os.path.dirname(path))
        if m:
            found[int(m.group(1))] = json.load(open(path))
    return dict(sorted(found.items()))


def kind(label):
    return "prs-layers" if label.startswith("prs-") else label


def budget_section(runs, args):
    ns = list(runs)
    order = []
    for n in ns:
        for s in runs[n]["strategies"]:
            if kind(s["label"]) not in order:
                order.append(kind(s["label"]))
    prompts = {n: runs[n]["strategies"][0]["prompts"] for n in ns}

    def strat(n, k):
        return next((s for s in runs[n]["strategies"] if kind(s["label"]) == k), None)

    def best_at_budget(s, n):
        point = next((p for p in s["curve"] if p["n"] == n), None)
        return ci(point["best"]) if point else "—"

    lines = ["## Reward at equal budget N (the paper's claim 1: PRS > PRand > Rand)", "",
             f"Each N is its own `prs compare` run: the same {prompts[ns[0]]} held-out prompts "
             f"(`examples/loop-heldout.jsonl`), seed 0, rubric reward, SmolLM2-135M-Instruct on the embedded engine, "
             f"answers up to {args.max_tokens} tokens. Each figure is a mean over prompts of the best reward in the "
             "prompt's N responses, with a 95% bootstrap interval over prompts.", ""]
    rows = []
    for k in order:
        row = [label_name(next(s["label"] for n in ns for s in runs[n]["strategies"] if kind(s["label"]) == k))]
        for n in ns:
            s = strat(n, k)
            row.append(best_at_budget(s, n) if s else "—")
        rows.append(row)
    lines += [table(["strategy"] + [f"N={n}" for n in ns], rows), ""]

    lines += ["### Paired against PRand", "",
              "The mean over prompts of (the strategy's best reward − PRand's), paired by prompt, with its 95% bootstrap interval. "
              "An interval that excludes zero separates the two at that budget.", ""]
    rows = []
    for k in order:
        if k == "prand":
            continue
        name = None
        row = []
        for n in ns:
            p = next((p for p in runs[n]["pairs"] if kind(p["a"]) == k and p["b"] == "prand"), None)
            if p:
                name = name or label_name(p["a"])
                row.append(f"{signed(p['bestRewardDifference'])} ({verdict(p['bestRewardDifference'])})")
            else:
                row.append("—")
        rows.append([name or k] + row)
    lines += [table(["strategy − PRand"] + [f"N={n}" for n in ns], rows), ""]

    lines += ["### Refinement success", "",
              "The share of scored refinements that score strictly above the draft they refine, and the mean reward change "
              "from draft to refinement (95% bootstrap intervals over prompts). A tree climbs only through these.", ""]
    rows = []
    for k in order:
        for n in ns:
            s = strat(n, k)
            if not s or not s.get("refinement"):
                continue
            a = s["refinement"]["all"]
            rows.append([label_name(s["label"]), f"N={n}", str(a["refinements"]), rate(a), change(a)])
    lines += [table(["strategy", "budget", "refinements", "beat their draft", "reward change"], rows), ""]
    deep = strat(ns[-1], "prs-layers")
    if deep and deep.get("refinement"):
        by = deep["refinement"]["by_layer"]
        lines += [f"By layer, PRS with 4 layers at N={ns[-1]}:", "",
                  table(["layer", "refinements", "beat their draft", "reward change"],
                        [[l, str(by[l]["refinements"]), rate(by[l]), change(by[l])] for l in sorted(by, key=int)]), ""]

    n_cat = 16 if 16 in runs else ns[-1]
    cats = runs[n_cat]["categories"]
    lines += [f"## Preference categories (claim 3: adaptation by category), N={n_cat}", "",
              "Mean best reward per preference category.", ""]
    rows = [[c] + [f"{s['meanBestByCategory'].get(c, float('nan')):.3f}" for s in runs[n_cat]["strategies"]] for c in cats]
    lines += [table(["category"] + [label_name(s["label"]) for s in runs[n_cat]["strategies"]], rows), ""]
    refined = [s for s in runs[n_cat]["strategies"] if s.get("refinement")]
    if refined:
        rows = [[c] + [rate(s["refinement"]["by_category"][c]) if c in s["refinement"]["by_category"] else "—" for s in refined]
                for c in cats]
        lines += ["Refinement success per category at the same budget:", "",
                  table(["category"] + [label_name(s["label"]) for s in refined], rows), ""]
    return lines


def claims_section(runs, loop):
    """The paper's three claims, each with what these runs measured (sentences built from the figures)."""
    ns = list(runs)
    lines = ["## The paper's claims, and what prs measured", ""]
    # Claim 1.
    held, why = [], []
    for n in ns:
        r = runs[n]
        best = {kind(s["label"]): next((p["best"]["mean"] for p in s["curve"] if p["n"] == n), None) for s in r["strategies"]}
        pair = next((p for p in r["pairs"] if p["a"] == "prs" and p["b"] == "prand"), None)
        order = "PRS > PRand > Rand" if best.get("prs", 0) > best.get("prand", 0) > best.get("rand", 0) else \
            "PRand > PRS > Rand" if best.get("prand", 0) > best.get("prs", 0) > best.get("rand", 0) else "another order"
        d = pair["bestRewardDifference"] if pair else None
        held.append(f"N={n}: {order}" + (f", PRS − PRand {signed(d)} ({verdict(d)})" if d else ""))
        s = next((s for s in r["strategies"] if s["label"] == "prs" and s.get("refinement")), None)
        if s:
            a = s["refinement"]["all"]
            why.append(f"N={n}: {rate(a)} of refinements beat their draft, mean change {change(a)}")
    lines += ["1. **Reward at equal N: PRS > PRand > Rand.** Measured: " + "; ".join(held) + ". "
              "PRand over Rand is the preference's own effect (the same sampler, the preference in the prompt). "
              "Why PRS does not pass PRand here: a tree only gains over independent samples through refinements that beat "
              "their draft, and the 135M policy's rarely do — " + "; ".join(why) + ". Each refinement spends a sample that "
              "an independent draw would have spent on a fresh chance.", ""]
    # Claim 2.
    if loop:
        lines += ["2. **Iterations keep improving with PRS.** See the loop section below: held-out reward per iteration with "
                  "its interval, PRS against PRand at equal budget with each iteration's policy, and refinement success on "
                  "held-out prompts before and after training on synthetic pairs.", ""]
    elif os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "evidence-loop.md")):
        lines += ["2. **Iterations keep improving with PRS.** Measured in a run of its own: `docs/evidence-loop.md` "
                  "(`make evidence-loop`: the trained-refiner and PRand chains of `examples/loop-refiner.yaml` beside the PRS and "
                  "Rand chains of `examples/loop-refiner-peers.yaml`, then `scripts/evidence.py --loop-only DIR1 DIR2`).", ""]
    else:
        lines += ["2. **Iterations keep improving with PRS.** Not measured in this write-up: the loop with a trained refiner "
                  "(`examples/loop-refiner.yaml`, then `scripts/evidence.py OUT --loop DIR`) has not been run yet.", ""]
    # Claim 3.
    n = 16 if 16 in runs else ns[-1]
    r = runs[n]
    prs = next((s for s in r["strategies"] if s["label"] == "prs"), None)
    prand = next((s for s in r["strategies"] if s["label"] == "prand"), None)
    rand = next((s for s in r["strategies"] if s["label"] == "rand"), None)
    if prs and prand and rand:
        gains = sorted(((c, prand["meanBestByCategory"].get(c, 0) - rand["meanBestByCategory"].get(c, 0),
                         prs["meanBestByCategory"].get(c, 0) - prand["meanBestByCategory"].get(c, 0)) for c in r["categories"]),
                       key=lambda x: -x[1])
        lines += [f"3. **Preference adaptation by category.** At N={n}, conditioning on the preference (PRand − Rand) gains "
                  + ", ".join(f"{c} {g:+.3f}" for c, g, _ in gains) + "; PRS − PRand by category: "
                  + ", ".join(f"{c} {h:+.3f}" for c, _, h in gains) + " (per-category means; the table below has them all).", ""]
    return lines


def load_loops(dirs):
    """One summary from one or more loop directories run with the same sizes, seed and prompts
    (e.g. examples/loop-refiner.yaml and examples/loop-refiner-peers.yaml): their chains side by
    side, the starting policy's evaluation from the first, and a sentence on whether each
    directory's own starting-policy evaluation agrees with it."""
    merged, notes = None, []
    for d in dirs:
        s = json.load(open(os.path.join(d, "summary.json")))
        if merged is None:
            merged = {"order": list(s["order"]), "chains": dict(s["chains"]), "dir_of": {c: d for c in s["order"]}}
            base = next((e for c in s["order"] for e in s["chains"][c] if e["iteration"] == 0), None)
            continue
        other = next((e for c in s["order"] for e in s["chains"][c] if e["iteration"] == 0), None)
        if base and other and base.get("eval_mean_reward") is not None and other.get("eval_mean_reward") is not None:
            d0 = other["eval_mean_reward"] - base["eval_mean_reward"]
            notes.append(f"`{d}` evaluated the same starting policy on its own: {other['eval_mean_reward']:.3f} "
                         f"against {base['eval_mean_reward']:.3f} in `{dirs[0]}` (difference {d0:+.3f}).")
        for c in s["order"]:
            if c in merged["chains"]:
                raise SystemExit(f"{d}: chain {c} is also in an earlier loop directory")
            merged["order"].append(c)
            merged["chains"][c] = s["chains"][c]
            merged["dir_of"][c] = d
    merged["dirs"], merged["notes"] = list(dirs), notes
    return merged


def eval_means(summary, chain, k):
    """prompt id → the mean reward of a chain's iteration-k policy's evaluation samples on that prompt."""
    path = os.path.join(summary["dir_of"][chain], chain, f"iter-{k}", "eval", "trees.jsonl")
    if not os.path.exists(path):
        return {}
    out = {}
    for line in open(path):
        t = json.loads(line)
        r = [n["reward"] for n in t["nodes"] if n.get("reward") is not None and n["kind"] != "feedback"]
        if r:
            out[t["id"]] = sum(r) / len(r)
    return out


def paired_difference(a, b, resamples=10000, seed=1):
    """Mean over shared prompts of a − b, with a 95% percentile bootstrap interval over prompts."""
    ids = sorted(set(a) & set(b))
    if len(ids) < 2:
        return None
    d = [a[i] - b[i] for i in ids]
    rng = random.Random(seed)
    means = sorted(sum(d[rng.randrange(len(d))] for _ in d) / len(d) for _ in range(resamples))
    return sum(d) / len(d), means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def loop_section(summary):
    lines = ["## The loop (claim 2: iterations keep improving with PRS)", "",
             f"{', '.join(f'`{d}`' for d in summary['dirs'])}: per chain and iteration, the held-out mean reward of the policy's own samples with its 95% interval, "
             "its gain over iteration 0 (paired), the refinement success of the iteration's sampled trees, and the "
             "refinement examples it trained on.", ""]
    rows = []
    for i, chain in enumerate(summary["order"]):
        for e in summary["chains"][chain]:
            if e["iteration"] == 0 and i > 0:
                continue  # the starting policy, shared by every chain: once
            chain_name = "starting policy" if e["iteration"] == 0 else chain
            c = e.get("eval_mean_reward_ci") or [None, None]
            held = f"{e['eval_mean_reward']:.3f} [{c[0]:.3f}, {c[1]:.3f}]" if e.get("eval_mean_reward") is not None and c[0] is not None else "—"
            g = e.get("gain_vs_base_ci")
            gain = f"{e['gain_vs_base']:+.3f} [{g[0]:+.3f}, {g[1]:+.3f}]" if e.get("gain_vs_base") is not None and g else "—"
            r = e.get("refinement_success")
            rows.append([chain_name, str(e["iteration"]), held, gain, rate(r) if r else "—", str(e.get("refine_examples", "—"))])
    lines += [table(["chain", "iteration", "held-out reward", "gain vs iteration 0", "refinements beating draft", "refine examples"], rows), ""]
    lines += list(summary["notes"]) + ([""] if summary["notes"] else [])
    rows = []
    for i, chain in enumerate(summary["order"]):
        for e in summary["chains"][chain]:
            s = (e.get("eval") or {}).get("search")
            if not s or (e["iteration"] == 0 and i > 0):
                continue
            r = s.get("refinement")
            rows.append(["starting policy" if e["iteration"] == 0 else chain, str(e["iteration"]), str(s["budget"]), ci(s["prs"]), ci(s["prand"]),
                         f"{signed(s['difference'])} ({verdict(s['difference'])})", rate(r) if r else "—", change(r) if r else "—"])
    if rows:
        lines += ["### PRS against PRand at equal budget with each iteration's policy (held-out prompts)", "",
                  "PRS (N/2 + N/2) and PRand at the same budget on the held-out prompts with the iteration's policy: mean best "
                  "rewards, their paired difference, and PRS's refinement success on those prompts (95% intervals over prompts).", "",
                  table(["chain", "iteration", "N", "PRS best", "PRand best", "PRS − PRand", "refinements beating draft", "reward change"], rows), ""]
    return lines


def loop_claims(summary):
    """The issue's three claims about the trained refiner, stated from a loop's summary."""
    searched = [(chain, e) for chain in summary["order"] for e in summary["chains"][chain] if (e.get("eval") or {}).get("search")]
    lines = ["## The trained refiner: the three claims, and what prs measured", ""]
    base = next((e for c, e in searched if e["iteration"] == 0), None)
    after = [(c, e) for c, e in searched if e["iteration"] > 0]
    if base and after:
        b = base["eval"]["search"].get("refinement")
        def both(r):
            return f"{rate(r)} beating their draft, mean reward change {change(r)}" if r else "—"
        parts = [f"{c} iteration {e['iteration']}: {both(e['eval']['search'].get('refinement'))}" for c, e in after]
        # The same measure on each iteration's own slice of training prompts, sampled by π(k−1) before any
        # training on them: every PRS chain's trees, side by side.
        fresh = []
        for c in summary["order"]:
            rs = [e.get("refinement_success") for e in summary["chains"][c] if e["iteration"] > 0]
            if rs and all(rs):
                fresh.append(f"{c} " + " → ".join(rate(r) for r in rs))
        fresh_text = ("" if not fresh else " On each iteration's fresh training prompts (its own slice, sampled by the "
                      "previous iteration's policy before any training on them, at the loop's budget), the share of refinements beating their draft, iteration 1 → last: " + "; ".join(fresh) + ".")
        lines += [f"1. **Training on synthetic pairs raises refinement success on held-out prompts.** PRS's refinements "
                  f"(self feedback) on the 120 held-out prompts at N={base['eval']['search']['budget']}, 95% intervals over "
                  f"prompts: base policy {both(b)}; " + "; ".join(parts) + "." + fresh_text, ""]
        diffs = [f"{c} iteration {e['iteration']}: {signed(e['eval']['search']['difference'])} "
                 f"({verdict(e['eval']['search']['difference'])})" for c, e in after]
        lines += [f"2. **After that training, PRS is above PRand at N={base['eval']['search']['budget']}.** Paired PRS − "
                  f"PRand mean best reward on the held-out prompts: base policy {signed(base['eval']['search']['difference'])} "
                  f"({verdict(base['eval']['search']['difference'])}); " + "; ".join(diffs) + ".", ""]
    last = {chain: next((e for e in reversed(summary["chains"][chain]) if e.get("eval_mean_reward") is not None), None)
            for chain in summary["order"]}
    last = {c: e for c, e in last.items() if e is not None and e["iteration"] > 0}
    def held(e):
        c = e.get("eval_mean_reward_ci") or [None, None]
        if e.get("eval_mean_reward") is None:
            return "—"
        return f"{e['eval_mean_reward']:.3f}" + (f" [{c[0]:.3f}, {c[1]:.3f}]" if c[0] is not None else "")
    start = next((e for c in summary["order"] for e in summary["chains"][c] if e["iteration"] == 0), None)
    ends = "; ".join(f"{chain} (iteration {e['iteration']}) {held(e)}" for chain, e in last.items()) or "no chain has a trained policy yet"
    if start:
        ends += f"; the starting policy {held(start)}"
    paired = ""
    if "prand" in last:
        k = last["prand"]["iteration"]
        diffs = []
        for c, e in last.items():
            if c == "prand" or e["iteration"] != k:
                continue
            d = paired_difference(eval_means(summary, c, k), eval_means(summary, "prand", k))
            if d:
                diffs.append(f"{c} {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] ({'includes zero' if d[1] <= 0 <= d[2] else 'above zero' if d[1] > 0 else 'below zero'})")
        if diffs:
            paired = (f" Paired by prompt against the PRand chain's iteration-{k} policy (each prompt's mean reward over its "
                      f"evaluation samples; 95% bootstrap interval, 10,000 resamples): " + "; ".join(diffs) + ".")
    lines += [f"3. **The trained-refiner chain ends at least as high as the PRand chain.** Held-out mean reward of each "
              f"chain's last policy (95% interval over prompts): {ends}.{paired}", ""]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", help="scripts/evidence.sh's output directory")
    ap.add_argument("--loop", nargs="+", metavar="DIR", help="prs loop directories to include (chains side by side)")
    ap.add_argument("--loop-only", nargs="+", metavar="DIR",
                    help="write the loops' write-up alone (docs/evidence-loop.md): one or more loop directories of "
                         "the same sizes, seed and prompts, their chains side by side")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--seconds", type=int, help="ignored (the runs' own wall times are stated)")
    args = ap.parse_args()
    if args.loop_only:
        lines = ["# Evidence: the loop with a trained refiner, measured", "",
                 "Generated by `prs loop --config examples/loop-refiner.yaml --out DIR1` and "
                 "`prs loop --config examples/loop-refiner-peers.yaml --out DIR2` (the same sizes, seed and prompts), then "
                 "`scripts/evidence.py --loop-only DIR1 DIR2 > docs/evidence-loop.md`; do not edit by hand. "
                 "The budget comparisons are in `docs/evidence.md`.", ""]
        summary = load_loops(args.loop_only)
        print("\n".join(lines + loop_claims(summary) + loop_section(summary)))
        return
    if not args.out:
        ap.error("give scripts/evidence.sh's output directory, or --loop-only DIR")
    runs = comparisons(args.out)
    if not runs:
        raise SystemExit(f"{args.out}: no nN/report.json (run scripts/evidence.sh first)")
    lines = ["# Evidence: PRS against PRand and Rand, measured", "",
             "Generated by `make evidence` (scripts/evidence.sh, then scripts/evidence.py); do not edit by hand."]
    # The runs' own wall times (summed over every process that worked on them, so resumed runs count once).
    sampled = sum(s["wallSeconds"] for r in runs.values() for s in r["strategies"])
    per_budget = ", ".join(f"N={n}: {sum(s['wallSeconds'] for s in r['strategies']) / 60:.0f} min" for n, r in runs.items())
    lines += ["", f"Sampling took {sampled / 60:.0f} minutes on this machine ({per_budget})."]
    lines += [""] + claims_section(runs, args.loop) + budget_section(runs, args)
    if args.loop:
        lines += loop_section(load_loops(args.loop))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
