"""Stack files are read as the Pulumi CLI reads them (tools/stack_yaml.py).

tests/stack_yaml/expected.json holds the real CLI's readings of every file in tests/stack_yaml/corpus/
(`pulumi config --json`, recorded with `python -m e2e.yaml_parity --record`; `make e2e` re-proves them).
"""

from __future__ import annotations

import json
import math

import pytest

from e2e import yaml_parity
from tests.test_preview_outputs import copy_project
from tools import engine, preview, stack_yaml

EXPECTED = json.loads(yaml_parity.EXPECTED.read_text())
CORPUS = sorted(yaml_parity.CORPUS.glob("*.yaml"))


def test_every_corpus_file_has_a_recorded_cli_reading():
    assert sorted(path.name for path in CORPUS) == sorted(EXPECTED)
    assert len(CORPUS) >= 20
    assert any(reading["refused"] for reading in EXPECTED.values())
    assert any(not reading["refused"] for reading in EXPECTED.values())


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.name)
def test_offline_reading_equals_the_cli_reading(path):
    offline = yaml_parity.offline_reading(path.read_bytes(), path.name)
    assert yaml_parity.same(offline, EXPECTED[path.name]), (offline, EXPECTED[path.name])
    if offline["refused"]:
        assert offline["message"], "a refusal says why"


def test_parity_compares_types_not_only_values():
    assert not yaml_parity.same({"refused": False, "config": {"a": 1}}, {"refused": False, "config": {"a": True}})
    assert not yaml_parity.same({"refused": False, "config": {"a": "1"}}, {"refused": False, "config": {"a": 1}})
    assert not yaml_parity.same({"refused": True, "message": "x"}, {"refused": False, "config": {}})
    assert yaml_parity.same({"refused": False, "config": {"a": 1000.0}}, {"refused": False, "config": {"a": 1000}})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("on", "on"), ("no", "no"), ("True", True), ("FALSE", False), ("~", None), ("", None),
        ("1_000", 1000), ("0x1F", 31), ("0o17", 15), ("017", 15), ("08", 8.0), ("1e3", 1000.0), (".5", 0.5),
        ("1:30", "1:30"), ("1.2.3", "1.2.3"), ("1e400", "1e400"), ("+12", 12),
        ("2026-11-30", "2026-11-30 00:00:00 +0000 UTC"),
        ("2026-11-30T09:15:00+02:00", "2026-11-30 09:15:00 +0200 +0200"),
        ("2026-11-30 9:5:0.120", "2026-11-30 09:05:00.12 +0000 UTC"),
        ("2026-11-30T09:15:00", "2026-11-30T09:15:00"),  # the T layouts need a zone: text
        ("2026-02-30", "2026-02-30"),  # no such day: text
    ],
)  # fmt: skip
def test_scalars_resolve_as_yaml_v3_resolves_them(text, value):
    assert stack_yaml.resolve(text) == value
    assert type(stack_yaml.resolve(text)) is type(value)


def test_infinite_numbers_are_refused_as_the_cli_refuses_them():
    assert math.isinf(stack_yaml.resolve(".inf"))
    with pytest.raises(ValueError, match=r"\+Inf"):
        stack_yaml.config_string(stack_yaml.loads("a: {b: .inf}", "x")["a"])


@pytest.mark.parametrize(
    ("value", "text"),
    [(1000.0, "1000"), (0.1, "0.1"), (1e21, "1e+21"), (1.5e-7, "1.5e-7"), (-2.5, "-2.5"), (0.0, "0")],
)
def test_top_level_numbers_are_passed_as_go_writes_them(value, text):
    assert stack_yaml.config_string(value) == (text, False)


def test_duplicate_keys_are_all_named_with_their_lines():
    with pytest.raises(stack_yaml.StackYamlError) as error:
        stack_yaml.loads("config:\n  a: 1\n  b: 2\n  a: 3\n  b: 4\n", "Pulumi.dev.yaml")
    message = str(error.value)
    assert message.startswith("Pulumi.dev.yaml: ")
    assert "line 4: mapping key 'a' already defined at line 2" in message
    assert "line 5: mapping key 'b' already defined at line 3" in message


def test_same_line_duplicates_in_a_flow_mapping_are_found():
    with pytest.raises(stack_yaml.StackYamlError, match="mapping key 'x' already defined at line 1"):
        stack_yaml.loads("q: {x: 1, x: 2}", "f")


def test_merge_keys_keep_explicit_keys_and_the_first_merged_map():
    document = stack_yaml.loads("b: &b {x: 1, y: 2}\nm: {<<: [{x: 5}, *b], y: 3}", "f")
    assert document["m"] == {"x": 5, "y": 3}


def test_true_and_one_stay_two_keys_as_in_a_go_map():
    assert stack_yaml.loads("m: {1: a, true: b, 1.5: c, ~: d}", "f")["m"] == {"1": "a", "true": "b", "1.5": "c", "<nil>": "d"}


def test_an_alias_bomb_is_refused_before_it_expands():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    with pytest.raises(stack_yaml.StackYamlError, match="excessive aliasing"):
        stack_yaml.loads("\n".join(lines), "bomb.yaml")  # 10**9 strings if it were expanded


def test_a_self_referencing_anchor_is_refused():
    with pytest.raises(stack_yaml.StackYamlError, match="contains an alias of itself"):
        stack_yaml.loads("a: &a [1, *a]", "f")


def test_non_utf8_is_refused_naming_the_file():
    with pytest.raises(stack_yaml.StackYamlError, match=r"^Pulumi.x.yaml: not UTF-8 \(byte 3"):
        stack_yaml.loads(b"a: \xff", "Pulumi.x.yaml")


def test_the_offline_engine_passes_the_program_what_the_cli_passes(tmp_path):
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.local.yaml"
    stack_file.write_text(stack_file.read_text() + "  platform:yamlCheck: {flag: on, when: 2026-11-30, n: 1e3}\n")
    config, _ = engine.stack_config("local", project)
    assert json.loads(config["platform:yamlCheck"]) == {"flag": "on", "when": "2026-11-30 00:00:00 +0000 UTC", "n": 1000}


def test_preview_refuses_a_duplicate_key_naming_file_and_lines(tmp_path, capsys):
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.local.yaml"
    lines = stack_file.read_text().splitlines()
    first = next(index for index, line in enumerate(lines) if line.startswith("  platform:namespace:"))
    lines.insert(first + 1, lines[first])
    stack_file.write_text("\n".join(lines) + "\n")
    assert preview.main(["--stack", "local", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert f"Pulumi.local.yaml: line {first + 2}: mapping key 'platform:namespace' already defined at line {first + 1}" in err


def test_an_unquoted_date_where_text_is_expected_is_a_config_error(tmp_path, capsys):
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.local.yaml"
    text = stack_file.read_text()
    assert "        LOG_LEVEL: debug\n" in text
    stack_file.write_text(text.replace("        LOG_LEVEL: debug\n", "        LOG_LEVEL: debug\n        RELEASED: 2026-11-30\n", 1))
    assert preview.main(["--stack", "local", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "platform:services[0].env.RELEASED: an unquoted date or time" in err
    assert "'2026-11-30 00:00:00 +0000 UTC'" in err
    assert "`pulumi config set --stack local --path 'services[0].env.RELEASED' '2026-11-30'`" in err


def test_an_unquoted_target_time_is_read_as_the_time_it_is():
    from components.database_cluster_config import DatabaseRestore

    restore = DatabaseRestore.model_validate({"source": "orders", "targetTime": "2026-11-30 09:15:00 +0200 +0200"})
    assert restore.target_time == "2026-11-30T09:15:00+02:00"
    assert DatabaseRestore.model_validate({"source": "orders", "targetTime": "2026-11-30 09:15:00 +0000 UTC"}).target_time == (
        "2026-11-30T09:15:00Z"
    )
