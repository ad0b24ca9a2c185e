"""The pull-request workflow refers to things that exist: stacks, policy configs, commands."""

from __future__ import annotations

import yaml

from tools import engine

WORKFLOW = engine.PROJECT_DIR / ".github" / "workflows" / "pull-request.yml"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_every_stack_in_a_matrix_has_a_stack_file_and_policy_config():
    jobs = load()["jobs"]
    for job in ("offline-preview", "pulumi-preview"):
        for stack in jobs[job]["strategy"]["matrix"]["stack"]:
            assert (engine.PROJECT_DIR / f"Pulumi.{stack}.yaml").is_file()
            assert (engine.PROJECT_DIR / "policies" / "config" / f"{stack}.json").is_file()


def test_real_preview_runs_the_policy_pack_and_only_where_secrets_exist():
    job = load()["jobs"]["pulumi-preview"]
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    (step,) = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert step["with"]["command"] == "preview"
    assert step["with"]["policyPacks"] == "policies"
    assert step["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    assert (engine.PROJECT_DIR / "policies" / "PulumiPolicy.yaml").is_file()


def test_offline_preview_uploads_sarif_for_forks_too():
    job = load()["jobs"]["offline-preview"]
    assert "if" not in job
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    assert uploads and uploads[0]["with"]["sarif_file"] == "preview.sarif"
    assert job["permissions"]["security-events"] == "write"
    commands = "\n".join(s.get("run", "") for s in job["steps"])
    assert "tools.preview --stack ${{ matrix.stack }} --format sarif" in commands
    assert "--diff \"origin/${{ github.base_ref }}\"" in commands


def test_test_job_runs_what_ci_runs():
    steps = load()["jobs"]["test"]["steps"]
    assert {"run": "make test"} in steps
    assert "make test" in (engine.PROJECT_DIR / ".ci" / "run").read_text()
