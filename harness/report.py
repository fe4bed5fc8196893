"""Step `report`: the main table, one row per policy x (base | ranker x regularizer), seeds averaged.

Columns: AlpacaEval LC and raw win rate, MT-Bench score, and the final mean change of the chosen
(and rejected) log-likelihood against the reference over the training pairs. With several seeds a
cell shows mean ± standard deviation.
"""

from __future__ import annotations

import time

from harness.io import read_json, write_text
from harness.provenance import provenance

COLUMNS = {
    "alpaca_eval_lc": "AlpacaEval LC (%)",
    "alpaca_eval_wr": "AlpacaEval WR (%)",
    "mt_bench": "MT-Bench (1-10)",
    "chosen_logratio": "Δ log π(y_w)",
    "rejected_logratio": "Δ log π(y_l)",
}


def _values(path: str) -> tuple[dict, dict]:
    data = read_json(path)
    cell = data["cell"]
    if "benchmark" not in data:  # a training summary
        return cell, {
            "chosen_logratio": data["final_chosen_logratio"],
            "rejected_logratio": data["final_rejected_logratio"],
        }
    m = data["metrics"]
    if data["benchmark"] == "alpaca_eval":
        return cell, {
            "alpaca_eval_lc": m["length_controlled_winrate"],
            "alpaca_eval_wr": m["win_rate"],
            "lc_method": m["lc_method"],
        }
    return cell, {"mt_bench": m["score"]}


def build_table(paths: list[str]):
    """A DataFrame with one row per (policy, ranker, regularizer), seeds aggregated."""
    import pandas as pd

    records: dict[tuple, dict] = {}
    for p in paths:
        cell, vals = _values(p)
        key = (cell["policy"], cell["ranker"], cell["regularizer"], cell["seed"])
        records.setdefault(key, {}).update(vals)
    rows = [
        dict(zip(("policy", "ranker", "regularizer", "seed"), k, strict=True), **v)
        for k, v in records.items()
    ]
    df = pd.DataFrame(rows)
    numeric = [c for c in COLUMNS if c in df]
    grouped = df.groupby(["policy", "ranker", "regularizer"], sort=False, dropna=False)
    table = grouped[numeric].agg(["mean", "std", "count"])
    out = pd.DataFrame(index=table.index)
    for c in numeric:
        out[c] = table[(c, "mean")]
        out[f"{c}_std"] = table[(c, "std")]
    out["seeds"] = grouped["seed"].nunique()
    if "lc_method" in df:
        out["lc_method"] = grouped["lc_method"].first()
    out = out.reset_index()
    base_first = out["ranker"].eq("base").map({True: 0, False: 1})
    return out.assign(_o=base_first).sort_values(["policy", "_o", "ranker", "regularizer"]).drop(columns="_o")


def to_markdown(df) -> str:
    def fmt(row, c):
        v, s = row.get(c), row.get(f"{c}_std")
        if v is None or v != v:
            return "—"
        return f"{v:.2f}" if s is None or s != s else f"{v:.2f} ± {s:.2f}"

    cols = [c for c in COLUMNS if c in df]
    lines = [
        "| policy | ranker | regularizer | seeds | " + " | ".join(COLUMNS[c] for c in cols) + " |",
        "|" + "---|" * (4 + len(cols)),
    ]
    for _, row in df.iterrows():
        cells = [row["policy"], row["ranker"], row["regularizer"], str(row["seeds"])]
        lines.append("| " + " | ".join(cells + [fmt(row, c) for c in cols]) + " |")
    note = ""
    if "lc_method" in df and df["lc_method"].astype(str).str.startswith("approximate").any():
        note = (
            "\nAlpacaEval LC is the offline approximation (alpaca_eval's GLM without instruction "
            "difficulty), not the official number; see the README.\n"
        )
    return "\n".join(lines) + "\n" + note


def run(job: dict, inputs: list[str], output_csv: str, output_md: str) -> None:
    from harness.io import atomic_path

    started = time.time()
    df = build_table(inputs)
    with atomic_path(output_csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    prov = provenance(job, started=started)
    md = to_markdown(df) + (
        f"\n<!-- git {prov['git_sha']} dirty={prov['git_dirty']} config {prov['config_hash']} -->\n"
    )
    write_text(output_md, md)
