"""The benchmark's arithmetic: scores, percentiles, ratios and target checks."""

import pytest

from bench import check_dialogues, nlu_eval, report
from bench.run import cap_epochs, classify, percentiles


def test_intent_scores_weight_f1_by_support():
    pairs = [("greet", "greet"), ("greet", "greet"), ("greet", "inform"), ("inform", "inform")]
    scores = nlu_eval.intent_scores(pairs)
    assert scores["accuracy"] == pytest.approx(0.75)
    greet, inform = scores["per_intent"]["greet"], scores["per_intent"]["inform"]
    assert greet == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert inform["f1"] == pytest.approx(2 / 3)
    assert scores["weighted_f1"] == pytest.approx((0.8 * 3 + 2 / 3) / 4)


def test_entity_scores_count_values_not_just_names():
    rows = [
        {"gold": [("location", "outer_hip")], "predicted": [
            {"entity": "location", "value": "outer_hip", "extractor": "CaseEntityExtractor"}]},
        {"gold": [("location", "groin")], "predicted": [
            {"entity": "location", "value": "buttock", "extractor": "CaseEntityExtractor"}]},
        {"gold": [], "predicted": [
            {"entity": "stage", "value": "pregnant", "extractor": "DIETClassifier"}]},
    ]  # fmt: skip
    ours = nlu_eval.entity_scores(rows, "CaseEntityExtractor")
    assert (ours["precision"], ours["recall"]) == pytest.approx((0.5, 0.5))
    everyone = nlu_eval.entity_scores(rows, None)
    assert everyone["precision"] == pytest.approx(1 / 3)


def test_percentiles_and_empty_runs():
    assert percentiles([]) == {}
    p = percentiles([float(x) for x in range(1, 101)])
    assert p["p50"] == pytest.approx(50.5)
    assert p["p95"] == pytest.approx(95.05)


def test_profile_samples_are_classified_by_the_first_matching_rule():
    assert classify("rasa/core/actions/action.py;jsonschema/validators.py").startswith(
        "custom actions: validating"
    )
    assert classify("rasa/core/tracker_store.py;sqlalchemy") == (
        "tracker store: reading and writing events"
    )
    assert classify("somewhere/else.py") == "other Python"


def test_smoke_runs_cap_only_tensorflow_epochs():
    config = {
        "pipeline": [{"name": "DIETClassifier", "epochs": 100}, {"name": "WhitespaceTokenizer"}],
        "policies": [{"name": "TEDPolicy", "epochs": 2}, {"name": "RulePolicy"}],
    }
    assert cap_epochs(config, 3)
    assert [c.get("epochs") for c in config["pipeline"] + config["policies"]] == [3, None, 2, None]
    assert not cap_epochs({"pipeline": [{"name": "LogisticRegressionClassifier"}]}, 3)


def _result(p95_1: float, p95_32: float, paced_32: float, train: float) -> dict:
    return {
        "train": {"seconds": train},
        "load": {"1": {"median": {"p95": p95_1}}, "32": {"median": {"p95": p95_32}}},
        "paced": {"32": {"median": {"p95": paced_32}}},
    }


def test_table_checks_every_latency_target_against_the_default():
    ours, default = _result(15, 1200, 70, 15), _result(100, 3000, 300, 160)
    table = {row[0]: row for row in report.rows(ours, default, [1, 32], [32], 3.0)}
    assert table["Cold training time (s)"][1:] == ["15.0", "160.0", "0.09", "< 30 s", "yes"]
    assert table["Turn latency p95 at 1 conv. (ms)"][-1] == "yes"
    assert table["Turn latency p95 at 32 conv. (ms)"][-1] == "**no**"  # 1200 ms > 250 ms
    assert table["Turn latency p95 at 32 conv., pausing 3 s (ms)"][-1] == "yes"
    slower = _result(30, 1200, 200, 15)  # over 0.2 x the default's p95 at 1 conv.
    table = {row[0]: row for row in report.rows(slower, default, [1, 32], [32], 3.0)}
    assert table["Turn latency p95 at 1 conv. (ms)"][-1] == "**no**"
    assert table["Turn latency p95 at 32 conv., pausing 3 s (ms)"][-1] == "**no**"


def test_table_has_the_long_conversation_and_the_crowd_with_their_targets():
    windows = [{"turns": "1-20", "first": 1, "p50": 40.0}, {"turns": "141-160", "first": 141,
               "p50": 50.0}]  # fmt: skip
    ours = {
        "long": {"windows": windows, "first_p50": 40.0, "last_p50": 50.0,
                 "last_over_first": 1.25, "events": 900, "server_cpu_ms_per_turn": 20.0},
        "crowd": {"conversations": 200, "think": 10.0, "p50": 30.0, "p95": 260.0, "p99": 400.0,
                  "error_count": 0},
        "load": {"32": {"median": {"server_cpu_ms_per_turn": 16.0}}},
    }  # fmt: skip
    table = {row[0]: row for row in report.rows(ours, {}, [32])}
    assert table["Long conversation: turns 141-160 over turns 1-20 (median turn)"][-1] == "yes"
    assert table["Turn latency p95 at 200 conv., pausing 10 s (ms)"][-2:] == ["< 250 ms", "**no**"]
    assert table["Errors at 200 conv., pausing 10 s"][-1] == "yes"
    assert table["Rasa server CPU per turn at 32 conv. (ms)"][-2:] == ["≤ 15 ms", "**no**"]
    ours["long"]["last_over_first"] = 2.0
    table = {row[0]: row for row in report.rows(ours, {}, [32])}
    assert table["Long conversation: turns 141-160 over turns 1-20 (median turn)"][-1] == "**no**"


def test_benchmark_dialogues_expect_what_the_engine_concludes():
    assert check_dialogues.check() == []


def test_readme_gets_the_first_table_and_the_machine_line(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\noutro\n")
    latest = "# t\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- Machine: 2 cores\n\n| x |\n|---|\n"
    assert report.sync_readme(latest, readme)
    assert readme.read_text() == (
        f"intro\n{report.README_START}\n| a | b |\n|---|---|\n| 1 | 2 |\n\nMachine: 2 cores\n"
        f"{report.README_END}\noutro\n"
    )
    assert not report.sync_readme(latest, readme)
    assert not report.sync_readme(latest, tmp_path / "missing.md")
