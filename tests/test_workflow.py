"""The GitHub workflows refer to things that exist (stacks, policy configs, commands) and keep their hardening."""

from __future__ import annotations

import re

import pytest
import yaml

from tools import engine

WORKFLOWS = engine.PROJECT_DIR / ".github" / "workflows"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
ALL_WORKFLOWS = sorted(WORKFLOWS.glob("*.y*ml"))

# `uses: owner/repo[/path]@<40-hex commit> # vX.Y.Z`: a tag can be moved, a commit cannot.
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+\s*$")


def load(path=PULL_REQUEST) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # PyYAML reads the bare key `on` as True


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")]


def test_every_stack_in_a_matrix_has_a_stack_file_and_policy_config():
    jobs = load()["jobs"]
    for job in ("offline-preview", "pulumi-preview"):
        for stack in jobs[job]["strategy"]["matrix"]["stack"]:
            assert (engine.PROJECT_DIR / f"Pulumi.{stack}.yaml").is_file()
            assert (engine.PROJECT_DIR / "policies" / "config" / f"{stack}.json").is_file()


def test_real_preview_runs_the_policy_pack_and_only_where_secrets_exist():
    job = load()["jobs"]["pulumi-preview"]
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    steps = steps_using(job, "pulumi/actions")
    # one step per stack of the matrix, each chosen by `if` and naming its own passphrase secret
    assert sorted(s["with"]["stack-name"] for s in steps) == sorted(job["strategy"]["matrix"]["stack"])
    for step in steps:
        stack = step["with"]["stack-name"]
        assert step["if"] == f"matrix.stack == '{stack}'"
        assert step["with"]["command"] == "preview"
        assert step["with"]["policyPacks"] == "policies"
        assert step["with"]["policyPackConfigs"] == f"policies/config/{stack}.json"
        assert step["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
        assert step["env"]["PULUMI_CONFIG_PASSPHRASE"] == f"${{{{ secrets.PULUMI_CONFIG_PASSPHRASE_{stack.upper()} }}}}"
    assert (engine.PROJECT_DIR / "policies" / "PulumiPolicy.yaml").is_file()


def test_offline_preview_uploads_sarif_for_forks_too():
    job = load()["jobs"]["offline-preview"]
    assert "if" not in job
    uploads = steps_using(job, "github/codeql-action/upload-sarif")
    assert uploads and uploads[0]["with"]["sarif_file"] == "preview.sarif"
    assert job["permissions"]["security-events"] == "write"
    # contexts reach the scripts through env, never expanded into them
    assert job["env"]["STACK"] == "${{ matrix.stack }}"
    commands = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'tools.preview --stack "$STACK" --format sarif' in commands
    assert '--diff "origin/$BASE_REF"' in commands
    (diff,) = [s for s in job["steps"] if "--diff" in s.get("run", "")]
    assert diff["env"]["BASE_REF"] == "${{ github.base_ref }}"


def test_no_expression_is_expanded_inside_a_run_script():
    for path in ALL_WORKFLOWS:
        for job in load(path)["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (path.name, step)


def strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def test_secrets_are_never_chosen_by_a_computed_name():
    # secrets[...] or toJSON(secrets) hands the job every secret of the repository
    for path in ALL_WORKFLOWS:
        for value in strings(load(path)):
            assert not re.search(r"secrets\s*\[|\(\s*secrets\s*\)", value), (path.name, value)


def test_every_action_is_pinned_to_a_commit_with_its_version():
    for path in ALL_WORKFLOWS:
        lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(?:-\s+)?uses:", line)]
        assert lines, path.name
        for line in lines:
            assert PINNED.match(line), f"{path.name}: {line.strip()}"


def test_one_version_per_action_across_workflows():
    versions: dict[str, set[str]] = {}
    for path in ALL_WORKFLOWS:
        for action, ref in re.findall(r"uses:\s+([\w./-]+)@(\S+ # \S+)", path.read_text()):
            versions.setdefault(action, set()).add(ref)
    assert all(len(refs) == 1 for refs in versions.values()), versions


def test_checkouts_keep_no_credentials():
    for path in ALL_WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            for step in steps_using(job, "actions/checkout"):
                assert step["with"]["persist-credentials"] is False, (path.name, name)


def test_test_and_lint_jobs_run_what_ci_runs():
    jobs = load()["jobs"]
    ci = (engine.PROJECT_DIR / ".ci" / "run").read_text()
    for job, command in (("test", "make test"), ("lint", "make lint")):
        assert {"run": command} in jobs[job]["steps"]
        assert command in ci
    assert ci.index("make test") < ci.index("make lint") < ci.index("make e2e")


# deploy.yml


def test_deploy_runs_on_push_to_main_only():
    workflow = load(DEPLOY)
    assert triggers(workflow) == {"push": {"branches": ["main"]}}
    assert workflow["permissions"] == {}


def test_deploy_is_staging_then_prod_behind_an_environment():
    jobs = load(DEPLOY)["jobs"]
    assert set(jobs) == {"staging", "prod"}
    assert "needs" not in jobs["staging"]
    assert jobs["prod"]["needs"] == "staging"
    assert jobs["staging"]["environment"] == "staging"
    assert jobs["prod"]["environment"] == "prod"  # its required reviewers are set in the repository's settings


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_deploy_job_is_alone_on_its_stack_and_never_cancelled(stack):
    job = load(DEPLOY)["jobs"][stack]
    assert job["concurrency"] == {"group": f"pulumi-up-{stack}", "cancel-in-progress": False}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_deploy_job_runs_pulumi_up_with_the_policy_pack(stack):
    job = load(DEPLOY)["jobs"][stack]
    (step,) = steps_using(job, "pulumi/actions")
    assert step["with"]["command"] == "up"
    assert step["with"]["stack-name"] == stack
    assert step["with"]["policyPacks"] == "policies"
    assert step["with"]["policyPackConfigs"] == f"policies/config/{stack}.json"
    assert (engine.PROJECT_DIR / "policies" / "config" / f"{stack}.json").is_file()
    assert (engine.PROJECT_DIR / f"Pulumi.{stack}.yaml").is_file()
    # the same backend and passphrase secrets as the pull request's preview
    assert step["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert step["env"]["PULUMI_CONFIG_PASSPHRASE"] == f"${{{{ secrets.PULUMI_CONFIG_PASSPHRASE_{stack.upper()} }}}}"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_deploy_job_gets_cloud_credentials_through_oidc_only(stack):
    job = load(DEPLOY)["jobs"][stack]
    (aws,) = steps_using(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(aws["with"])
    # credentials exist before pulumi runs
    names = [s.get("uses", "").split("@")[0] for s in job["steps"]]
    assert names.index("aws-actions/configure-aws-credentials") < names.index("pulumi/actions")


def test_id_token_is_granted_only_to_the_deploy_jobs():
    for path in ALL_WORKFLOWS:
        workflow = load(path)
        assert "id-token" not in (workflow.get("permissions") or {}), path.name
        for name, job in workflow["jobs"].items():
            granted = (job.get("permissions") or {}).get("id-token")
            if path == DEPLOY:
                assert granted == "write", name
            else:
                assert granted is None, (path.name, name)


def workflow_step(name: str) -> str:
    steps = load()["jobs"]["offline-preview"]["steps"]
    return next(step["run"] for step in steps if step.get("name") == name)


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_the_pack_step_over_the_rendered_yaml_passes_on_every_shipped_stack(stack, tmp_path):
    """The workflow's own two steps, as it runs them: the preview writes masked manifests, the pack judges them."""
    import os
    import subprocess
    import sys

    outputs = tmp_path / "github-output"
    env = {**os.environ, "STACK": stack, "GITHUB_OUTPUT": str(outputs)}
    for name in ("Offline preview (SARIF)", "Policy pack over the rendered YAML (as security owners run it on Helm/Kustomize output)"):
        script = workflow_step(name).replace(".venv/bin/python", sys.executable).replace("build/manifests", str(tmp_path))
        script = script.replace("> preview.sarif", f"> {tmp_path / 'preview.sarif'}")  # nothing written into the checkout
        result = subprocess.run(["bash", "-c", script], cwd=engine.PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (name, result.stdout[-2000:], result.stderr[-2000:])
    assert outputs.read_text() == "exit=0\n"  # the preview itself found nothing to fail on
    assert any((tmp_path / stack).glob("secret_*.yaml")), "the stack renders Secrets, so the mask is what is judged"
