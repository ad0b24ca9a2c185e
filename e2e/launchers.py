"""What the CLI starts that is not a Go binary: each a line of shell that runs the venv's Python.

- `pulumi-resource-pulumi-python` (on PATH): the host of Python dynamic providers (the backup bucket), which
  upstream ships next to the CLI (`python -u -m pulumi.dynamic "$@"`).
- `pulumi-resource-random` (on PATH): the STAND-IN for pulumi-random, whose provider module is not served
  (e2e/standins/random_provider.py).
- `policy-pack`: what `--policy-pack` is given. The CLI (pkg/v3 v3.274.1, resource/plugin/analyzer_plugin.go
  NewPolicyAnalyzer) runs a policy pack FOLDER through its runtime's language host (`pulumi-language-python`,
  which is not served), but runs a FILE given to `--policy-pack` as the analyzer plugin itself, with the engine
  address as its argument. So the launcher starts the pack exactly as the Python language host does
  (`python -u -m pulumi.policy <engine> <pack dir>` in the pack dir), and the real engine talks to the real pack.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tools.engine import PROJECT_DIR

POLICY_PACK_DIR = PROJECT_DIR / "policies"
POLICY_PACK_LAUNCHER = "policy-pack"


def _script(command: str) -> str:
    root = shlex.quote(str(PROJECT_DIR))
    return f"#!/bin/sh\nexport PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}\n{command}\n"


def write(bin_dir: Path) -> Path:
    """Writes the launchers into bin_dir (put it first on PATH) and returns it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    python = shlex.quote(sys.executable)
    scripts = {
        "pulumi-resource-pulumi-python": f'exec {python} -u -m pulumi.dynamic "$@"',
        "pulumi-resource-random": f'exec {python} -u -m e2e.standins.random_provider "$@"',
        POLICY_PACK_LAUNCHER: f'cd {shlex.quote(str(POLICY_PACK_DIR))} && exec {python} -u -m pulumi.policy "$1" .',
    }
    for name, command in scripts.items():
        path = bin_dir / name
        path.write_text(_script(command))
        path.chmod(0o755)
    return bin_dir
