"""The preview's JSON and SARIF outputs, --diff against a folder or a git ref, and decrypted secrets staying masked."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools import diff as stack_diff
from tools import engine, preview

LOCAL_PASSPHRASE = "local-only-passphrase"
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "stack_config.py", "Pulumi.local.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml")


def copy_project(target: Path) -> Path:
    for name in PROJECT_FILES:
        shutil.copy(engine.PROJECT_DIR / name, target / name)
    shutil.copytree(engine.PROJECT_DIR / "components", target / "components", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def edit_stack(project: Path, stack: str, change) -> None:
    path = project / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = preview.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_output_is_complete_and_stable(capsys):
    code, out, _ = run(capsys, "--stack", "staging", "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert report["formatVersion"] == 1
    assert (report["project"], report["stack"]) == ("platform", "staging")
    assert report["summary"]["resources"] == len(report["resources"])
    assert report["summary"]["deployable"] is True
    assert report["secureConfig"]["decrypted"] is False
    assert {"platform:api-token", "platform:web-session-key"} <= set(report["secureConfig"]["placeholders"])
    deployment = next(r for r in report["resources"] if r["name"] == "web-deployment")
    assert deployment["kubernetes"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "platform", "name": "web"}
    assert set(report) == {"formatVersion", "project", "stack", "secureConfig", "resources", "schemaErrors", "policyFindings", "diff", "summary"}
    _, again, _ = run(capsys, "--stack", "staging", "--format", "json")
    assert again == out  # same input, same bytes: safe to diff and to cache


def test_sarif_points_at_the_component_and_the_stack_file():
    result = preview.PreviewResult(engine.render("local"), {}, [], [])
    resources = {r.urn: r for r in result.rendering.resources}
    secret = next(r for r in result.rendering.resources if r.name == "api-secrets")
    from tools.analyzer import Finding

    result.findings = [Finding("no-plaintext-secret-manifest", "mandatory", "stringData is plaintext", secret.urn, secret.name, secret.type)]
    log = preview.to_sarif(result)
    assert log["version"] == "2.1.0"
    (run_,) = log["runs"]
    rule_ids = [rule["id"] for rule in run_["tool"]["driver"]["rules"]]
    assert "no-plaintext-secret-manifest" in rule_ids and "schema" in rule_ids
    (finding,) = run_["results"]
    assert finding["level"] == "error"
    assert rule_ids[finding["ruleIndex"]] == finding["ruleId"]
    component, stack_file = [location["physicalLocation"] for location in finding["locations"]]
    assert component["artifactLocation"]["uri"] == "components/app_service.py"
    source_line = (engine.PROJECT_DIR / "components/app_service.py").read_text().splitlines()[component["region"]["startLine"] - 1]
    assert "k8s.core.v1.Secret(" in source_line
    assert stack_file["artifactLocation"]["uri"] == "Pulumi.local.yaml"
    declared = (engine.PROJECT_DIR / "Pulumi.local.yaml").read_text().splitlines()[stack_file["region"]["startLine"] - 1]
    assert declared.strip() == "- name: api"
    assert secret.urn in resources


def test_decrypted_secrets_never_reach_output(capsys, monkeypatch, tmp_path):
    config, _ = engine.stack_config("local", passphrase=LOCAL_PASSPHRASE)
    secret_values = [config["platform:api-token"], config["platform:web-session-key"]]
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", LOCAL_PASSPHRASE)
    outputs = []
    for output_format in ("text", "json", "sarif"):
        code, out, err = run(capsys, "--stack", "local", "--format", output_format, "--out", str(tmp_path))
        assert code == 0, err
        outputs += [out, err]
    assert "decrypted" in outputs[0]
    outputs += [path.read_text() for path in tmp_path.iterdir()]
    for value in secret_values:
        assert not any(value in text for text in outputs)
    # ...while the program really did get the decrypted values, as Pulumi secrets.
    rendering = engine.render("local", passphrase=LOCAL_PASSPHRASE)
    secret = next(r for r in rendering.resources if r.name == "api-secrets")
    assert engine.is_secret(secret.inputs["stringData"])
    assert secret.inputs["stringData"]["value"]["API_TOKEN"] == config["platform:api-token"]


def test_wrong_passphrase_fails_the_preview(capsys, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "guess")
    code, out, err = run(capsys, "--stack", "local")
    assert code == 2
    assert "Pulumi.local.yaml: incorrect passphrase" in err
    assert out == "" and "Traceback" not in err


def test_diff_against_a_folder(capsys, tmp_path):
    (tmp_path / "project").mkdir()
    project = copy_project(tmp_path / "project")
    base = tmp_path / "base"
    code, _, err = run(capsys, "--stack", "local", "--project-dir", str(project), "--out", str(base))
    assert code == 0, err
    assert (base / stack_diff.SNAPSHOT_FILE).is_file()

    def scale_web(config):
        config["platform:services"][0]["replicas"] = 2
        config["platform:services"][1]["env"]["LOG_LEVEL"] = "info"

    edit_stack(project, "local", scale_web)
    code, out, err = run(capsys, "--stack", "local", "--project-dir", str(project), "--diff", str(base), "--format", "json")
    assert code == 0, err
    diff = json.loads(out)["diff"]
    assert diff["counts"] == {"add": 0, "update": 3, "replace": 0, "remove": 0}
    changed = {change["name"]: change for change in diff["changes"]}
    assert {"path": "spec.replicas", "before": 1, "after": 2} in changed["web-deployment"]["fields"]
    assert {"path": "data.LOG_LEVEL", "before": "debug", "after": "info"} in changed["api-config"]["fields"]
    # the checksum annotation rolls the api pods
    assert any(f["path"].endswith("checksum/config") for f in changed["api-deployment"]["fields"])
    code, out, _ = run(capsys, "--stack", "local", "--project-dir", str(project), "--diff", str(base))
    assert "Diff: stack local: 0 to add, 3 to update, 0 to replace, 0 to remove" in out
    assert "spec.replicas: 1 => 2" in out


def test_stateful_replacements_are_called_out_first():
    def cluster(name):
        return {"type": "kubernetes:postgresql.cnpg.io/v1:Cluster", "name": "orders", "protect": True,
                "inputs": {"metadata": {"name": name}, "spec": {"instances": 3, "storage": {"size": "10Gi"}}}}

    def config_map(level):
        return {"type": "kubernetes:core/v1:ConfigMap", "name": "a-config", "protect": False, "inputs": {"data": {"L": level}}}

    base = {"urn:db": cluster("orders"), "urn:cm": config_map("info"), "urn:gone": config_map("x")}
    head = {"urn:db": cluster("orders-2"), "urn:cm": config_map("debug"), "urn:new": config_map("y")}
    diff = stack_diff.diff_snapshots("prod", base, head)
    first = diff.changes[0]
    assert (first.name, first.action, first.destroys_data, first.protect) == ("orders", "replace", True, True)
    assert [c.action for c in diff.changes] == ["replace", "remove", "update", "add"]
    assert diff.summary() == (
        "stack prod: 1 to add, 1 to update, 1 to replace, 1 to remove; 1 stateful resource(s) would lose data"
    )
    assert "!! replaces a stateful resource" in stack_diff.format_text(diff).splitlines()[1]


def test_renaming_a_kubernetes_object_is_a_replacement():
    base = {"u": {"type": "kubernetes:core/v1:Service", "name": "s", "inputs": {"metadata": {"name": "a"}}}}
    head = {"u": {"type": "kubernetes:core/v1:Service", "name": "s", "inputs": {"metadata": {"name": "b"}}}}
    (change,) = stack_diff.diff_snapshots("x", base, head).changes
    assert change.action == "replace" and not change.destroys_data


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def test_diff_against_a_git_ref(capsys, tmp_path):
    project = copy_project(tmp_path)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    edit_stack(project, "local", lambda config: config["platform:services"][0].update(image="web:1.5.0"))
    code, out, err = run(capsys, "--stack", "local", "--project-dir", str(project), "--diff", "HEAD", "--format", "json")
    assert code == 0, err
    diff = json.loads(out)["diff"]
    assert diff["counts"]["update"] == 1
    (change,) = diff["changes"]
    assert change["name"] == "web-deployment"
    assert change["fields"] == [
        {"path": "spec.template.spec.containers[0].image", "before": "ghcr.io/example-org/web:1.4.2", "after": "ghcr.io/example-org/web:1.5.0"}
    ]
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=project, capture_output=True, text=True).stdout
    assert len(worktrees.strip().splitlines()) == 1  # the temporary worktree is gone


@pytest.mark.parametrize("base", ["no-such-ref", "v0.0.0-missing"])
def test_diff_against_a_missing_ref_is_a_clear_error(capsys, base):
    code, out, err = run(capsys, "--stack", "local", "--diff", base)
    assert code == 2
    assert f"--diff {base}: neither a folder nor a git ref" in err
    assert "Traceback" not in err


def test_diff_against_a_folder_without_snapshot(capsys, tmp_path):
    code, _, err = run(capsys, "--stack", "local", "--diff", str(tmp_path))
    assert code == 2
    assert "resources.json: cannot read the base snapshot" in err


def test_renaming_the_backup_bucket_is_a_stateful_replacement(rendered):
    bucket = next(r for r in rendered["prod"].resources if r.type == stack_diff.DYNAMIC_TYPE)
    base = preview.snapshot(rendered["prod"])
    head = json.loads(json.dumps(base))
    head[bucket.urn]["inputs"]["bucket_name"] = "another-bucket"
    diff = stack_diff.diff_snapshots("prod", base, head)
    (change,) = diff.changes
    assert (change.action, change.destroys_data, change.protect) == ("replace", True, True)
    assert change.replaced_by[0][0] == "bucket_name"
    assert "replaced because bucket_name changed" in stack_diff.format_text(diff)


def test_diff_against_another_stacks_output_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, "--stack", "staging", "--out", str(tmp_path / "staging"))
    assert code == 0, err
    code, out, err = run(capsys, "--stack", "prod", "--diff", str(tmp_path / "staging"))
    assert code == 2
    assert f"{tmp_path / 'staging'} holds a preview of stack 'staging', not 'prod'" in err
    assert "Diff:" not in out


def test_changes_the_cluster_refuses_in_place_come_before_other_updates():
    def change(name, action="update", refused=(), stateful=False):
        return stack_diff.ResourceChange(urn=name, type="t", name=name, action=action, stateful=stateful, protect=False, refused_in_place=list(refused))

    changes = [change("a-update"), change("b-added", "add"), change("c-refused", refused=[("spec.x", "immutable")]), change("d-db", "replace", stateful=True)]
    ordered = [c.name for c in sorted(changes, key=stack_diff.change_order)]
    assert ordered == ["d-db", "c-refused", "a-update", "b-added"]
