"""real_preview_s: a real `pulumi preview` (the CLI and providers `make e2e` builds) of the synthetic stacks.

Used by `benchmarks.scaling` when the e2e toolchain is built (`e2e/toolchain.sh --print` succeeds), so the
offline preview can be compared with the real engine on the same stack. Each stack is set up as `make e2e` sets
one up (fresh file backend, passphrase, secrets set with `pulumi config set --secret`), the kubernetes provider
renders YAML to a folder (no cluster), the policy pack runs with the stack's config, and only the preview itself
is timed (wall clock, one run: it takes seconds to minutes).
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from pathlib import Path

from e2e import launchers, run, stacks
from e2e.processes import Processes
from tools import engine

# Keys the synthetic stacks change (benchmarks.scaling.synthetic_config); the rest is the stack file's.
SYNTHETIC_KEYS = ("services", "databases", "quota", "ingress")
STACK = "local"  # the stack benchmarks.scaling grows
REAL_SIZES = (10, 100)


def real_preview_seconds(sizes: list[int], bin_dir: Path, synthetic_config) -> dict[int, float]:
    project = engine.project_name()
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="bench-real-") as temp, Processes(Path(temp) / "logs") as processes:
        work = Path(temp)
        moto_url = run.start_moto(processes)
        env = run.engine_env(work / "home", [launchers.write(work / "launchers"), bin_dir], secrets.token_urlsafe(16), moto_url)
        for services in sizes:
            config, _ = synthetic_config(services)
            overrides = run.common_overrides(STACK, moto_url)
            for key in SYNTHETIC_KEYS:
                if f"{project}:{key}" in config:
                    overrides[f"{project}:{key}"] = json.loads(config[f"{project}:{key}"])
            overrides[f"{project}:kubernetes"] = {"renderDirectory": str(work / f"rendered-{services}"), "renderSecretsInPlaintext": True}
            e2e = stacks.prepare(STACK, work / f"stack-{services}", env, bin_dir.parent, overrides)
            automation = e2e.automation()
            started = time.perf_counter()
            automation.preview(**run.policy_args(e2e))
            seconds[services] = round(time.perf_counter() - started, 2)
    return seconds
