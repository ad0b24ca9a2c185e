"""The offline preview command: what a reviewer sees, what it writes, and how it fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools import engine, preview


@pytest.fixture(scope="module")
def prod_preview(tmp_path_factory, rendered):
    out = tmp_path_factory.mktemp("prod")
    result = preview.run_preview("prod", preview.default_policy_config("prod"), rendering=rendered["prod"])
    preview.write_manifests(result, out)
    return result, out


def test_prod_preview_is_deployable(prod_preview):
    result, _ = prod_preview
    assert result.schema_errors == []
    assert result.mandatory_findings == []
    assert result.ok


def test_writes_one_schema_valid_manifest_per_object(prod_preview):
    result, out = prod_preview
    files = sorted(out.glob("*.yaml"))
    kubernetes_objects = [r for r in result.rendering.resources if r.is_kubernetes_object]
    assert len(files) == len(result.manifests) == len(kubernetes_objects) > 20
    from tools import schemas

    objects = [yaml.safe_load(path.read_text()) for path in files]
    assert schemas.validate_all(objects) == []
    assert {"deployment_platform_web.yaml", "namespace_platform.yaml", "secret_platform_api-secrets.yaml"} <= {
        path.name for path in files
    }


def test_secrets_are_masked_in_files_and_text(prod_preview, rendered):
    result, out = prod_preview
    secret = yaml.safe_load((out / "secret_platform_api-secrets.yaml").read_text())
    assert secret["stringData"] == {"API_TOKEN": preview.MASK}
    text = preview.format_text(result)
    written = "".join(path.read_text() for path in out.glob("*.yaml"))
    for shown in (text, written):
        assert engine.PLACEHOLDER_PREFIX not in shown
    assert "Secure config replaced by placeholders (set PULUMI_CONFIG_PASSPHRASE to decrypt)" in text


def test_numbers_are_integers_again(prod_preview):
    _, out = prod_preview
    hpa = yaml.safe_load((out / "horizontalpodautoscaler_platform_web.yaml").read_text())
    assert hpa["spec"]["minReplicas"] == 3 and isinstance(hpa["spec"]["minReplicas"], int)


def test_text_lists_every_resource_with_its_parent(prod_preview):
    result, _ = prod_preview
    text = preview.format_text(result)
    assert f"{len(result.rendering.resources)} resources" in text
    assert any(line.split()[:3] == ["kubernetes:apps/v1:Deployment", "web-deployment", "web"] for line in text.splitlines())
    assert "Result: deployable" in text


def test_masking_keeps_shapes():
    wrapped = engine.wrap_secret({"a": "x", "n": 5.0, "b": True, "l": ["y"]})
    assert preview.mask_secrets({"data": wrapped, "plain": "v"}) == {
        "data": {"a": preview.MASK, "n": 0, "b": False, "l": [preview.MASK]},
        "plain": "v",
    }


def copy_project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "__main__.py", "stack_config.py", "Pulumi.local.yaml"):
        shutil.copy(engine.PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(engine.PROJECT_DIR / "components", tmp_path / "components")
    return tmp_path


def test_plaintext_secret_fails_the_preview_with_the_fix(tmp_path, capsys):
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.local.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["platform:api-token"] = "plaintext-token"
    stack_file.write_text(yaml.safe_dump(document))
    code = preview.main(["--stack", "local", "--project-dir", str(project)])
    captured = capsys.readouterr()
    assert code == 2
    assert "platform:api-token: stored in plaintext in Pulumi.local.yaml" in captured.err
    assert "pulumi config set --secret --stack local api-token <value>" in captured.err
    assert "plaintext-token" not in captured.out + captured.err
    assert "TYPE" not in captured.out  # nothing was rendered


def test_unknown_stack_is_a_clear_error(capsys):
    assert preview.main(["--stack", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.nope.yaml: no such stack file; known stacks: local, prod, staging" in err


def test_malformed_stack_file_is_a_clear_error(tmp_path, capsys):
    project = copy_project(tmp_path)
    (project / "Pulumi.local.yaml").write_text("config: [unclosed\n")
    assert preview.main(["--stack", "local", "--project-dir", str(project)]) == 2
    assert "Pulumi.local.yaml: line 2, column 1: not valid YAML" in capsys.readouterr().err


def test_command_line_writes_manifests(tmp_path, rendered):
    completed = subprocess.run(
        [sys.executable, "-m", "tools.preview", "--stack", "local", "--out", str(tmp_path)],
        cwd=engine.PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Offline preview of stack 'local'" in completed.stdout
    assert "Traceback" not in completed.stderr
    expected = sum(1 for r in rendered["local"].resources if r.is_kubernetes_object)
    assert len(list(tmp_path.glob("*.yaml"))) == expected > 18
