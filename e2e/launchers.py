"""The three plugins the CLI finds on PATH that are not Go binaries: each one line of shell that runs Python.

- `pulumi-analyzer-policy-python`: how the CLI runs a Python policy pack when no Python language host is
  installed (the fallback in sdk/go/common/resource/plugin/analyzer_plugin.go). Upstream shipped this very
  script until v3.221 (`python -u -m pulumi.policy "$@"`).
- `pulumi-resource-pulumi-python`: the host of Python dynamic providers (the backup bucket), which upstream
  ships next to the CLI (`python -u -m pulumi.dynamic "$@"`).
- `pulumi-resource-random`: the STAND-IN for pulumi-random, whose provider module is not served (e2e/standins).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tools.engine import PROJECT_DIR

LAUNCHERS = {
    "pulumi-analyzer-policy-python": "-m pulumi.policy",
    "pulumi-resource-pulumi-python": "-m pulumi.dynamic",
    "pulumi-resource-random": "-m e2e.standins.random_provider",
}


def write(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    python = shlex.quote(sys.executable)
    root = shlex.quote(str(PROJECT_DIR))
    for name, module in LAUNCHERS.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\nPYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} exec {python} -u {module} "$@"\n')
        path.chmod(0o755)
    return bin_dir
