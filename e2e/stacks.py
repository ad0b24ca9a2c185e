"""A stack set up the way a user sets one up, run by the real Pulumi CLI.

Each e2e stack gets its own folder with a copy of the program and a stack file made from the repository's:
the same config, minus the `secure:` values (they were encrypted with a passphrase the harness does not
have) and with a few e2e overrides (where the cluster is, where the backup bucket is). Then, as a user would:
a fresh `file://` backend, `pulumi stack init` with the passphrase provider, `pulumi config set --secret` of
every secret key. `preview`/`up`/`refresh`/`destroy` run through the Automation API with the program inline,
because no Python language host (`pulumi-language-python`) is served as a Go module (README, "Verified for real").
"""

from __future__ import annotations

import json
import runpy
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import stack_config
from tools import engine

PROGRAM_FILES = ("Pulumi.yaml", "__main__.py", "stack_config.py", "components", "policies")  # what `pulumi up` reads
POLICY_PACK = engine.PROJECT_DIR / "policies"


@dataclass
class E2EStack:
    name: str
    project_dir: Path  # the copy of the program, with Pulumi.<name>.yaml
    env: dict[str, str]  # the CLI's environment (PULUMI_HOME, backend, passphrase, PATH, ...)
    pulumi_root: Path  # <root>/bin/pulumi
    secret_values: dict[str, str] = field(default_factory=dict)  # config key -> the value set with --secret

    @property
    def policy_config(self) -> Path:
        return POLICY_PACK / "config" / f"{self.name}.json"

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """Runs the real CLI in the stack's folder; raises with its output on failure."""
        result = subprocess.run(
            [str(self.pulumi_root / "bin" / "pulumi"), *args, "--non-interactive"],
            cwd=self.project_dir, env=self.env, input=input, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args[:3])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def automation(self):
        """The stack in the Automation API, with `__main__.py` of the stack's folder as the inline program."""
        from pulumi import automation as auto

        program_path = str(self.project_dir / "__main__.py")
        if str(self.project_dir) not in sys.path:
            sys.path.insert(0, str(self.project_dir))

        def program() -> None:
            runpy.run_path(program_path, run_name="__main__")

        options = auto.LocalWorkspaceOptions(
            work_dir=str(self.project_dir),
            pulumi_home=self.env["PULUMI_HOME"],
            env_vars=self.env,
            pulumi_command=auto.PulumiCommand(root=str(self.pulumi_root)),
        )
        return auto.select_stack(self.name, project_name=engine.project_name(), program=program, opts=options)


def stack_file_without_secrets(stack: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The repository's stack file with its `secure:` values removed (their keys returned) and top-level keys
    replaced by `overrides` (None removes the key)."""
    document = engine.read_stack_file(stack)
    config = {}
    secret_keys = []
    for key, value in document.get("config", {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.append(key)
        else:
            config[key] = value
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    # A secret the overridden config no longer names (prod's kubeconfig, once `kubernetes` renders to a folder) is
    # not set: the program refuses an encrypted value nothing uses, as a user would remove it.
    named = stack_config.secret_keys_in({key.split(":", 1)[-1]: value for key, value in config.items()})
    return {"config": config}, [key for key in secret_keys if key.split(":", 1)[-1] in named]


def prepare(
    stack: str,
    folder: Path,
    env: dict[str, str],
    pulumi_root: Path,
    overrides: dict[str, Any],
    secret_overrides: dict[str, str] | None = None,
) -> E2EStack:
    """Copies the program, writes the stack file and sets every secret with `pulumi config set --secret`."""
    if folder.exists():
        shutil.rmtree(folder)
    project_dir = folder / "project"
    project_dir.mkdir(parents=True)
    for name in PROGRAM_FILES:
        source = engine.PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, project_dir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project_dir / name)
    document, secret_keys = stack_file_without_secrets(stack, overrides)
    (project_dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    backend = folder / "state"
    backend.mkdir()
    e2e = E2EStack(stack, project_dir, {**env, "PULUMI_BACKEND_URL": backend.as_uri(), "PYTHONPATH": str(project_dir)}, pulumi_root)
    e2e.cli("stack", "init", stack, "--secrets-provider", "passphrase")
    for key in secret_keys:
        value = (secret_overrides or {}).get(key.split(":", 1)[1]) or f"e2e-{secrets.token_urlsafe(18)}"
        e2e.secret_values[key] = value
        # The value on stdin, so it is never on a command line.
        e2e.cli("config", "set", "--secret", "--stack", stack, key, input=value)
    return e2e


def offline_preview(e2e: E2EStack, out_dir: Path, diff_base: Path | None = None, policy_config: Path | None = None) -> dict[str, Any]:
    """`python -m tools.preview` of the same stack folder (same config, same passphrase), JSON, objects to out_dir."""
    argv = [sys.executable, "-m", "tools.preview", "--stack", e2e.name, "--format", "json", "--out", str(out_dir),
            "--project-dir", str(e2e.project_dir), "--policy-pack-config", str(policy_config or e2e.policy_config)]  # fmt: skip
    if diff_base is not None:
        argv += ["--diff", str(diff_base)]
    env = {k: v for k, v in e2e.env.items() if not k.startswith("PULUMI_") or k == "PULUMI_CONFIG_PASSPHRASE"}
    result = subprocess.run(argv, cwd=engine.PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"tools.preview --stack {e2e.name} failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout)


def refused_at_up(e2e, obj: dict[str, Any]) -> tuple[bool, str]:
    """`pulumi up` (the real engine and provider, the stack's KUBECONFIG) of a one-resource program creating `obj`
    (a custom resource), in a stack of its own so the stack under test is not changed. Returns (whether the up
    failed, the CLI's error text); an object that was created is destroyed again."""
    import pulumi_kubernetes as k8s
    from pulumi import automation as auto

    name = obj["metadata"]["name"]

    def program() -> None:
        k8s.apiextensions.CustomResource(name, api_version=obj["apiVersion"], kind=obj["kind"], metadata=obj["metadata"], spec=obj["spec"])

    work = e2e.project_dir.parent / "refusals" / name
    (work / "state").mkdir(parents=True, exist_ok=True)
    env = {**e2e.env, "PULUMI_BACKEND_URL": (work / "state").as_uri()}
    project = "platform-e2e-refusal"
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work), pulumi_home=env["PULUMI_HOME"], env_vars=env, pulumi_command=auto.PulumiCommand(root=str(e2e.pulumi_root)),
        project_settings=auto.ProjectSettings(name=project, runtime="python"),
    )  # fmt: skip
    stack = auto.create_or_select_stack(name, project_name=project, program=program, opts=options)
    try:
        stack.up()
    except auto.CommandError as error:
        return True, str(error)
    stack.destroy()
    return False, ""


def denial(message: str) -> str:
    """The API server's words relaying a webhook's refusal ("admission webhook ... denied the request: ..."), from a
    CLI error text."""
    for line in message.splitlines():
        if "denied the request" in line:
            start = line.find("admission webhook")
            return line[max(start, 0):].strip().lstrip("* ")[:500]
    return message.strip()[-300:]
