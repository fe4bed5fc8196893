"""The main table and the MT-Bench category table: intervals over seeds or from one run's bootstrap."""

import json

import pytest

from harness.reporting import report


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _cell(ranker, reg, seed):
    return {"policy": "p", "ranker": ranker, "regularizer": reg, "seed": seed}


def _inputs(tmp_path):
    out = []
    for seed, lc in ((0, 40.0), (1, 42.0), (2, 44.0)):
        cell = _cell("ipr", "bcr", seed)
        out.append(
            _write(tmp_path, f"ae{seed}.json", {"benchmark": "alpaca_eval", "cell": cell, "metrics": {
                "length_controlled_winrate": lc, "length_controlled_winrate_ci": [lc - 3, lc + 3],
                "win_rate": lc - 5, "win_rate_ci": [lc - 8, lc - 2], "lc_method": "official length_controlled_v1"}})
        )  # fmt: skip
        out.append(
            _write(tmp_path, f"mt{seed}.json", {"benchmark": "mt_bench", "cell": cell, "metrics": {
                "score": 7.0 + seed, "score_ci": [6.0, 9.0], "per_category": {"math": 5.0 + seed, "writing": 8.0},
                "per_category_ci": {"math": [4.0, 7.0], "writing": [7.0, 9.0]}}})
        )  # fmt: skip
    base = _cell("base", "—", 0)
    out.append(
        _write(tmp_path, "base_ae.json", {"benchmark": "alpaca_eval", "cell": base, "metrics": {
            "length_controlled_winrate": 30.0, "length_controlled_winrate_ci": [27.5, 33.0], "win_rate": 25.0,
            "win_rate_ci": [22.0, 28.0], "lc_method": "official length_controlled_v1"}})
    )  # fmt: skip
    out.append(
        _write(tmp_path, "base_mt.json", {"benchmark": "mt_bench", "cell": base, "metrics": {
            "score": 6.5, "score_ci": [6.0, 7.0], "per_category": {"math": 4.0, "writing": 9.0},
            "per_category_ci": {"math": [3.0, 5.0], "writing": [8.5, 9.5]}}})
    )  # fmt: skip
    return out


def test_main_table_intervals(tmp_path):
    table = report.build_table(_inputs(tmp_path))
    md = report.to_markdown(table)
    base, trained = table.iloc[0], table.iloc[1]
    assert base["ranker"] == "base" and base["alpaca_eval_lc_ci"] == [27.5, 33.0]
    # three seeds: mean 42, sd 2, t(0.975, 2) = 4.303 -> half-width 4.303 * 2 / sqrt(3) = 4.97
    assert trained["alpaca_eval_lc"] == 42.0 and trained["seeds"] == 3
    assert "| p | ipr | bcr | 3 | 42.00 ± 4.97 |" in md
    assert "| p | base | — | 1 | 30.00 [27.50, 33.00] |" in md
    csv = report.to_csv(table).splitlines()
    header = csv[0].split(",")
    assert "alpaca_eval_lc_ci_low" in header and "alpaca_eval_lc_ci" not in header


def test_mt_bench_category_table_and_figure(tmp_path):
    inputs = [p for p in _inputs(tmp_path) if "mt" in p.rsplit("/", 1)[1]]
    outs = [str(tmp_path / f"cat.{e}") for e in ("csv", "md", "png", "pdf")]
    report.mt_bench_categories({"step": "mt_bench_categories"}, inputs, *outs)
    md = (tmp_path / "cat.md").read_text()
    assert "| policy | ranker | regularizer | seeds | math | writing | overall |" in md
    assert "| p | base | — | 1 | 4.00 [3.00, 5.00] | 9.00 [8.50, 9.50] | 6.50 [6.00, 7.00] |" in md
    assert "| p | ipr | bcr | 3 | 6.00 ± 2.48 |" in md  # math 5, 6, 7 over three seeds
    assert (tmp_path / "cat.png").read_bytes()[:4] == b"\x89PNG"
    alpaca_only = [p for p in _inputs(tmp_path) if "ae" in p.rsplit("/", 1)[1]]
    with pytest.raises(ValueError, match="no MT-Bench metrics"):
        report.category_table(alpaca_only)


def test_the_same_number_in_every_seed_says_so():
    """Three seeds with one value: no `± 0.00` that reads as certainty; the table says why."""
    import pandas as pd

    row = {"policy": "p", "ranker": "rm", "regularizer": "dpo", "seeds": 3}
    row.update(report.aggregate([{"mt_bench": 48.2}] * 3, "mt_bench"))  # a mean off by 1e-14 at 48.2
    assert report.fmt(row, "mt_bench") == "48.20 (= in every seed)"
    text = report.to_markdown(pd.DataFrame([row]))
    assert "48.20 (= in every seed)" in text and "`(= in every seed)`: each seed's checkpoint" in text
    spread = dict(row, **report.aggregate([{"mt_bench": v} for v in (5.0, 5.5, 6.0)], "mt_bench"))
    assert "±" in report.fmt(spread, "mt_bench")
