"""georecall report: the quick report end to end, and a planted failure that must show."""

import json


from georecall.cli import main
from georecall.report import construction_check, default_checks, run_report


def test_quick_report_writes_every_promised_file(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--quick", "--out", str(out)]) == 0
    for name in ("report.md", "report.html", "results.json", "tradeoff.png"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    assert results["passed"] and results["quick"]
    assert {t["theorem"] for t in results["theorems"]} >= {"Theorem 1", "Theorem 2", "Theorem 3", "Theorem 4", "Theorem 5",
                                                           "Theorem 6", "Certificate", "B1", "B4", "B6"}
    assert all(t["exhaustive"] for t in results["theorems"])
    assert {row["verdict"] for row in results["bounds_table"]} <= {"tight", "slack"}
    assert results["training"]["available"] and results["training"]["train_accuracy"] == 1.0
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html  # self-contained
    assert "| Theorem 1 |" in (out / "report.md").read_text()


def test_a_planted_broken_construction_fails_the_report(tmp_path):
    def break_one_subject(weights):
        rows = weights.W_E[: weights.meta.N].copy()
        rows[3] = rows[7]  # subject 3 now carries subject 7's facts
        return weights.with_subject_embeddings(rows)

    checks = default_checks(quick=True)[:2] + [
        construction_check("Planted", "a construction with one subject's embedding overwritten", "docs/theorems/single_hop.md",
                           "block", 64, 2, weights_hook=break_one_subject)
    ]
    results = run_report(tmp_path / "report", quick=True, checks=checks, with_training=False)
    assert not results["passed"]
    planted = results["theorems"][-1]
    assert planted["passed"] is False and "FAILED on" in planted["detail"]
    assert [t["passed"] for t in results["theorems"][:2]] == [True, True]
    assert "| Planted |" in (tmp_path / "report" / "report.md").read_text() and "FAILED" in (tmp_path / "report" / "report.md").read_text()


def test_a_margin_below_the_promise_fails_even_when_recall_is_exact(tmp_path):
    def shrink(weights):
        return weights.with_subject_embeddings(weights.W_E[: weights.meta.N] * 0.9)

    check = construction_check("Shrunk", "margins below the promised 2", "docs/theorems/single_hop.md", "block", 64, 2,
                               weights_hook=shrink)
    row = check.run()
    assert row["min_margin"] < 2 and row["passed"] is False


def test_a_crashing_check_is_reported_as_failed(tmp_path):
    def crash(weights):
        raise RuntimeError("boom")

    results = run_report(tmp_path / "report", quick=True, checks=[construction_check("Crash", "s", "d", "block", 16, 1, weights_hook=crash)],
                         with_training=False)
    assert not results["passed"] and "boom" in results["theorems"][0]["detail"]
