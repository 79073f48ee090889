"""Tests for the triage command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from triage.contract import OUTCOME_KEYS

ROOT = Path(__file__).resolve().parents[1]

YAML_CASE = """\
# 31 weeks, burning outer hip (the example conversation)
stage: pregnant
weeks: 31
locations: [side]
qualities: [burning]
triggers: [lying_on_side]
down_side_of_leg: true
numbness_tingling: false
severity: 5
wakes_at_night: true
weeks_of_pain: 2
red_flags: []
"""
JSON_CASE = {
    "stage": "postpartum",
    "weeks": 12,
    "locations": ["deep_pelvis"],
    "unstable": True,
    "tight": True,
    "red_flags": ["fever"],
}


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "actions.triage", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def outcome_of(result):
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    outcome = json.loads(result.stdout)
    assert isinstance(outcome, dict)
    assert set(OUTCOME_KEYS) <= set(outcome)
    return outcome


def test_yaml_file(tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(YAML_CASE, encoding="utf-8")
    outcome = outcome_of(run(str(path)))
    assert outcome["pattern"] == "it_band"
    assert outcome["urgency"] == "book_pt"
    assert outcome["book_pt_reasons"] == ["The pain wakes you at night."]


def test_json_file(tmp_path):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(JSON_CASE, indent="\t"), encoding="utf-8")
    outcome = outcome_of(run(str(path)))
    assert outcome["urgency"] == "urgent"
    assert outcome["red_flags"] == ["fever"]
    assert outcome["pattern"] == "pelvic_girdle_instability"


def test_stdin_yaml_and_json():
    assert outcome_of(run("-", stdin=YAML_CASE.encode()))["pattern"] == "it_band"
    assert outcome_of(run("-", stdin=json.dumps(JSON_CASE).encode()))["urgency"] == "urgent"


def test_output_is_one_json_line_and_pretty_is_the_same_object(tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(YAML_CASE, encoding="utf-8")
    plain = run(str(path))
    assert plain.stdout.decode().count("\n") == 1
    pretty = run("--pretty", str(path))
    assert json.loads(pretty.stdout) == json.loads(plain.stdout)


def test_help():
    result = run("--help")
    assert result.returncode == 0
    assert b"CASE_FILE" in result.stdout


INVALID = [
    ("unknown_field", "colour: red\n", "colour"),
    ("unknown_value", "stage: trimester\n", "stage"),
    ("unknown_list_value", "locations: [knee]\n", "locations"),
    ("wrong_type_bool", "unstable: yes please\n", "unstable"),
    ("bool_is_not_int", '{"severity": true}', "severity"),
    ("severity_11", "severity: 11\n", "severity"),
    ("weeks_minus_3", "weeks: -3\n", "weeks"),
    ("weeks_pregnant_50", "stage: pregnant\nweeks: 50\n", "weeks"),
    ("weeks_of_pain_nan", "weeks_of_pain: .nan\n", "weeks_of_pain"),
    ("list_not_mapping", "- stage\n- pregnant\n", "case"),
    ("scalar_not_mapping", "hello\n", "case"),
    ("json_list", "[1, 2]", "case"),
    ("empty_file", "", "case.txt"),
    ("blank_file", "  \n\n", "case.txt"),
    ("comments_only", "# nothing here\n", "case.txt"),
    ("not_yaml", "stage: [pregnant\n", "case.txt"),
    ("bad_json", '{"stage": "pregnant",', "case.txt"),
    ("date_value", "weeks: 2024-01-01\n", "weeks"),
    ("json_nested_too_deeply", "[" * 100_000, "case.txt"),
    ("yaml_deeply_nested_value", "locations: " + "[" * 5_000 + "]" * 5_000 + "\n", "case.txt"),
]


def assert_one_line_error(result, name):
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, (result.returncode, err)
    assert result.stdout == b""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert name in err, err
    assert "expected" in err, err


@pytest.mark.parametrize(
    ("text", "name"), [(t, n) for _, t, n in INVALID], ids=[i[0] for i in INVALID]
)
def test_invalid_case_file(tmp_path, text, name):
    path = tmp_path / "case.txt"
    path.write_text(text, encoding="utf-8")
    assert_one_line_error(run(str(path)), name)


def test_invalid_stdin():
    assert_one_line_error(run("-", stdin=b"severity: 11\n"), "severity")
    assert_one_line_error(run("-", stdin=b""), "<stdin>")


def test_missing_file(tmp_path):
    assert_one_line_error(run(str(tmp_path / "nope.yml")), "nope.yml")


def test_directory_is_unreadable(tmp_path):
    assert_one_line_error(run(str(tmp_path)), str(tmp_path))


def test_binary_file(tmp_path):
    path = tmp_path / "case.bin"
    path.write_bytes(b"\xff\xfe\x00\x81stage")
    assert_one_line_error(run(str(path)), "case.bin")


def test_bad_usage_is_one_line():
    for args in ((), ("a.yml", "b.yml")):
        result = run(*args)
        assert result.returncode == 2
        assert result.stderr.decode().count("\n") == 1
        assert b"Traceback" not in result.stderr


IMPORT_CHECK = """
import importlib, pkgutil, sys
import actions
assert not any(m == "rasa" or m.startswith(("rasa.", "rasa_sdk")) for m in sys.modules), "actions"
import actions.triage
import triage
assert triage._engine.cache_info().currsize == 0, "rulebook loaded at import"
# Like the Rasa SDK: import every module of the package.
for info in pkgutil.walk_packages(triage.__path__, "triage."):
    importlib.import_module(info.name)
importlib.import_module("actions.triage")
assert triage._engine.cache_info().currsize == 0, "rulebook loaded at import"
triage.triage({"locations": ["back"]})
bad = sorted(m for m in sys.modules if m == "rasa" or m.startswith(("rasa.", "rasa_sdk")))
assert not bad, bad
print("ok")
"""


def test_importing_actions_does_not_import_rasa_or_do_work():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert result.stderr == ""
