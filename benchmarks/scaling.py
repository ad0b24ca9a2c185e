"""Scaling benchmark: what the platform program and its checks cost on top of the Pulumi SDK, at 10 to 1,000 services.

    python -m benchmarks.scaling [--sizes 10,100,1000] [--out build/bench.json] [--no-checkov]

For each size, a synthetic stack is made from the local stack's config: its services replicated with unique
names (service i calls service i-1), a database (a copy of the stack's first) for every tenth service, a quota
big enough, everything else (ingress, monitoring, add-ons, ...) as the stack file has it. Then, each size in
fresh processes (so peak RSS is per size):

- bare_sdk_s: the same resources (types, names, parents, providers, wire-form inputs) registered as plain
  `pulumi.CustomResource` / `ComponentResource` / `ProviderResource` under the same mocks and monitor, no program
  logic: the Pulumi SDK's own cost (its own process);
- preview_s: the offline preview without checks (render + manifests, `tools.preview.run_preview(checks=False)`);
- preview_full_s: the offline preview with schema validation and the policy pack (`checks=True`); render_s,
  schema_s and policy_s split it;
- check_s: `python -m tools.check` over the YAML the preview writes (write_manifests), as a command (wall clock);
- checkov_s: checkov over the same folder, if `build/bench-venv/bin/checkov` (requirements-bench.txt) or a
  `checkov` on PATH exists, else null;
- real_preview_s (10 and 100 services): a real `pulumi preview` with the policy pack, by the CLI and providers
  `make e2e` builds, if that toolchain is built (benchmarks/real_preview.py), else null.

Both processes first warm up (imports and a tiny render or registration, not timed): the figures are the cost of
the resources, not of Python starting (check_s and checkov_s do include their commands' start-up). Up to 100
services each part is the best of three runs (the machine may be shared), 1,000 services run once. Results go to
build/bench.json (one object per size, with the machine) and a table.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import real_preview
from e2e import run as e2e_run
import stack_config
from tools import engine

SIZES = (10, 100, 1000)
DATABASE_EVERY = 10  # services 0, 10, 20, ... each get a database
STACK = "local"
BENCH_VENV = engine.PROJECT_DIR / "build" / "bench-venv"
DEFAULT_OUT = engine.PROJECT_DIR / "build" / "bench.json"
KEYS = ("services", "resources", "bare_sdk_s", "preview_s", "preview_full_s", "check_s", "checkov_s", "peak_rss_mib")


# --- the synthetic stack ----------------------------------------------------------------------------------------


def synthetic_config(services: int, stack: str = STACK, project_dir: Path = engine.PROJECT_DIR) -> tuple[dict[str, str], list[str]]:
    """The stack's config with `services` services and a database for every tenth, as engine.render takes it.

    Only the keys that name services or size the namespace change; every other key is copied as the stack file
    has it (secure values as the offline placeholders), so the benchmark follows the program as it grows.
    """
    if services < 1:
        raise ValueError("a stack needs at least one service")
    config, secret_keys = engine.stack_config(stack, project_dir)
    project = engine.project_name(project_dir)

    def key(name: str) -> str:
        return f"{project}:{name}"

    templates = json.loads(config[key("services")])
    replicas: list[dict[str, Any]] = []
    first_copy: dict[str, str] = {}  # a template service's name -> the name of its first copy
    for index in range(services):
        service = copy.deepcopy(templates[index % len(templates)])
        name = f"{service['name']}-{index}"
        first_copy.setdefault(service["name"], name)
        service["name"] = name
        service["calls"] = [replicas[-1]["name"]] if replicas else []
        replicas.append(service)
    synthetic = dict(config)
    synthetic[key("services")] = json.dumps(replicas)

    database_templates = json.loads(config.get(key("databases"), "[]"))
    if database_templates:
        databases = []
        for number, index in enumerate(range(0, services, DATABASE_EVERY)):
            database = copy.deepcopy(database_templates[number % len(database_templates)])
            database["name"] = f"{database['name']}-{number}"
            database["usedBy"] = [replicas[index]["name"]]
            databases.append(database)
        synthetic[key("databases")] = json.dumps(databases)

    if key("quota") in config:
        quota = json.loads(config[key("quota")])
        quota.update(
            requestsCpu=str(max(2, services)),
            requestsMemory=f"{max(4, 2 * services)}Gi",
            limitsCpu=str(max(4, 2 * services)),
            limitsMemory=f"{max(8, 4 * services)}Gi",
            pods=max(20, 10 * services),
        )
        synthetic[key("quota")] = json.dumps(quota)

    if key("ingress") in config:  # routes name services: point them at the first copy of the same service
        ingress = json.loads(config[key("ingress")])
        for host in ingress.get("hosts", []):
            for route in host.get("routes", []):
                route["service"] = first_copy.get(route.get("service"), replicas[0]["name"])
        synthetic[key("ingress")] = json.dumps(ingress)
    if key("caches") in config:  # a cache's users: the first copy of each service it names
        caches = json.loads(config[key("caches")])
        for cache in caches:
            cache["usedBy"] = sorted({first_copy.get(user, replicas[0]["name"]) for user in cache.get("usedBy", [])})
        synthetic[key("caches")] = json.dumps(caches)
    # Secrets only the template services named (one service copies only the first): a stack keeps no unused secret.
    values = {name.split(":", 1)[1]: json.loads(text) if text[:1] in "[{" else text for name, text in synthetic.items()}
    named = stack_config.secret_keys_in(values)
    unused = [full for full in secret_keys if full.split(":", 1)[1] not in named]
    return {name: text for name, text in synthetic.items() if name not in unused}, [k for k in secret_keys if k not in unused]


def expected_databases(services: int) -> int:
    return len(range(0, services, DATABASE_EVERY))


def render(services: int) -> engine.Rendering:
    config, secret_keys = synthetic_config(services)
    return engine.render(STACK, config=config, secret_keys=secret_keys)


# --- bare SDK registration --------------------------------------------------------------------------------------


def registration_spec(rendering: engine.Rendering) -> list[dict[str, Any]]:
    """What the program registered, as data: type, name, custom, parent index, provider index, wire-form inputs."""
    index = {r.urn: position for position, r in enumerate(rendering.resources)}
    spec = []
    for r in rendering.resources:
        provider_urn = r.provider.rsplit("::", 1)[0] if r.provider else ""
        spec.append(
            {
                "type": r.type,
                "name": r.name,
                "custom": r.custom,
                "parent": index.get(r.parent),
                "provider": index.get(provider_urn),
                "inputs": r.inputs,
            }
        )
    return spec


def register_plain(spec: list[dict[str, Any]]) -> None:
    """Registers every entry with the SDK's plain resource classes: no typed args, no components' logic."""
    import pulumi

    created: list[Any] = []
    for entry in spec:
        parent = created[entry["parent"]] if entry["parent"] is not None else None
        provider = created[entry["provider"]] if entry["provider"] is not None else None
        opts = pulumi.ResourceOptions(parent=parent, provider=provider)
        type_, name, inputs = entry["type"], entry["name"], entry["inputs"]
        if type_.startswith("pulumi:providers:"):
            resource_ = pulumi.ProviderResource(type_.split(":")[-1], name, dict(inputs), opts)
        elif entry["custom"]:
            resource_ = pulumi.CustomResource(type_, name, dict(inputs), opts)
        else:
            resource_ = pulumi.ComponentResource(type_, name, None, opts)
            resource_.register_outputs({})
        created.append(resource_)


def bare_sdk_registration(spec: list[dict[str, Any]]) -> tuple[float, int]:
    """Seconds to register `spec` under the engine's mocks and monitor, and how many resources were recorded."""
    project = engine.project_name()
    gc.collect()
    start = time.perf_counter()
    recorded, _ = engine.run_program(lambda: register_plain(spec), project=project, stack=STACK)
    return time.perf_counter() - start, len(recorded)


# --- one size -----------------------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def _timed(module, name: str, totals: dict[str, float]):
    """Wraps module.name so the seconds spent in it add up in totals[name] (to split the full preview)."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)
    return original


def repetitions(services: int) -> int:
    """Small sizes are short and the machine is shared: the best of three. 1,000 services: one run."""
    return 3 if services <= 100 else 1


def measure_preview(services: int, manifests_dir: Path | None, spec_file: Path | None, repeat: int = 1) -> dict[str, Any]:
    """Render + preview without and with checks (the best of `repeat` runs of each part); optionally writes the
    manifests and the registration spec."""
    from tools import analyzer, preview, schemas

    policy_config = preview.default_policy_config(STACK)
    render(1)  # warm-up: the program's imports and the SDK's first registrations (not timed)

    best: dict[str, float] = {}
    for _ in range(max(1, repeat)):
        rendering = result = None  # let the previous run's objects go before this one is timed
        gc.collect()
        start = time.perf_counter()
        rendering = render(services)
        seconds = {"render": time.perf_counter() - start}

        start = time.perf_counter()
        preview.run_preview(STACK, policy_config, rendering=rendering, checks=False)
        seconds["manifests"] = time.perf_counter() - start

        totals: dict[str, float] = {}
        originals = {"validate_all": _timed(schemas, "validate_all", totals), "analyze": _timed(analyzer, "analyze", totals)}
        try:
            start = time.perf_counter()
            result = preview.run_preview(STACK, policy_config, rendering=rendering, checks=True)
            seconds["checks"] = time.perf_counter() - start
        finally:
            schemas.validate_all = originals["validate_all"]
            analyzer.analyze = originals["analyze"]
        seconds["schema"], seconds["policy"] = totals.get("validate_all", 0.0), totals.get("analyze", 0.0)
        best = {key: min(value, best.get(key, value)) for key, value in seconds.items()}
    render_s, manifests_s, checks_s = best["render"], best["manifests"], best["checks"]

    figures = {
        "services": services,
        "resources": len(rendering.resources),
        "kubernetes_objects": len(result.manifests),
        "rendered_services": len(rendering.of_type("platform:app:AppService")),
        "rendered_databases": len(rendering.of_type("platform:database:DatabaseCluster")),
        "preview_s": round(render_s + manifests_s, 3),
        "preview_full_s": round(render_s + checks_s, 3),
        "render_s": round(render_s, 3),
        "schema_s": round(best["schema"], 3),
        "policy_s": round(best["policy"], 3),
        "repetitions": max(1, repeat),
        "schema_errors": len(result.schema_errors),
        "policy_findings": len(result.findings),
        "deployable": result.ok,
    }
    if manifests_dir is not None:
        preview.write_manifests(result, manifests_dir)
    if spec_file is not None:
        spec_file.write_text(json.dumps(registration_spec(rendering)))
    figures["peak_rss_mib"] = peak_rss_mib()
    return figures


def measure_bare(spec_file: Path, repeat: int = 1) -> dict[str, Any]:
    spec = json.loads(spec_file.read_text())
    warm_up = [entry for entry in spec if entry["parent"] is None and entry["provider"] is None][:3]
    bare_sdk_registration(warm_up)  # warm-up: the SDK's imports and first registrations (not timed)
    seconds, recorded = min(bare_sdk_registration(spec) for _ in range(max(1, repeat)))
    return {"bare_sdk_s": round(seconds, 3), "bare_resources": recorded, "bare_peak_rss_mib": peak_rss_mib()}


def checkov_command() -> list[str] | None:
    for candidate in (BENCH_VENV / "bin" / "checkov", shutil.which("checkov")):
        if candidate and Path(candidate).is_file():
            return [str(candidate)]
    return None


def _wall_clock(command: list[str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=engine.PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if completed.returncode not in (0, 1):  # 1: findings; anything else: it did not run
        raise RuntimeError(f"{' '.join(command[:3])} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return round(seconds, 3)


def time_check(manifests_dir: Path, repeat: int = 1) -> float:
    command = [sys.executable, "-m", "tools.check", "--format", "json", str(manifests_dir)]
    return min(_wall_clock(command) for _ in range(max(1, repeat)))


def time_checkov(manifests_dir: Path, command: list[str] | None) -> float | None:
    if command is None:
        return None
    return _wall_clock([*command, "-d", str(manifests_dir), "--framework", "kubernetes", "--skip-download", "--quiet", "-o", "json"])


def _child(argv: list[str]) -> dict[str, Any]:
    """Runs `python -m benchmarks.scaling --child ...` in a fresh process; returns the JSON it prints."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.scaling", "--child", *argv],
        cwd=engine.PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child {argv} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure(services: int, *, checkov: bool = True, work_dir: Path | None = None) -> dict[str, Any]:
    """Every figure for one size, each phase in its own fresh process."""
    with tempfile.TemporaryDirectory(prefix="bench-", dir=work_dir) as temp:
        manifests = Path(temp) / "manifests"
        spec = Path(temp) / "spec.json"
        repeat = str(repetitions(services))
        figures = _child(["preview", str(services), "--manifests", str(manifests), "--spec", str(spec), "--repeat", repeat])
        figures.update(_child(["bare", str(spec), "--repeat", repeat]))
        figures["check_s"] = time_check(manifests, repetitions(services))
        figures["checkov_s"] = time_checkov(manifests, checkov_command() if checkov else None)
    return derived(figures)


def derived(figures: dict[str, Any]) -> dict[str, Any]:
    resources = figures["resources"]
    figures["per_resource_ms"] = round(1000 * figures["preview_full_s"] / resources, 3) if resources else None
    figures["bare_per_resource_ms"] = round(1000 * figures["bare_sdk_s"] / resources, 3) if resources else None
    figures["ratio_full_bare"] = round(figures["preview_full_s"] / figures["bare_sdk_s"], 3) if figures["bare_sdk_s"] else None
    checkov_s = figures.get("checkov_s")
    figures["ratio_checkov_check"] = round(checkov_s / figures["check_s"], 2) if checkov_s and figures["check_s"] else None
    ordered = {key: figures.get(key) for key in KEYS}
    ordered.update({key: value for key, value in figures.items() if key not in ordered})
    return ordered


# --- report -------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import pulumi

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "pulumi": getattr(pulumi, "__version__", None) or _version("pulumi"),
        "pulumi_policy": _version("pulumi-policy"),
        "jsonschema": _version("jsonschema"),
    }


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    columns = [
        ("services", "services"), ("resources", "resources"), ("bare_sdk_s", "bare_sdk_s"), ("preview_s", "preview_s"),
        ("preview_full_s", "preview_full_s"), ("check_s", "check_s"), ("checkov_s", "checkov_s"),
        ("per_resource_ms", "ms/resource"), ("ratio_full_bare", "full/bare"), ("peak_rss_mib", "peak_rss_mib"),
        ("real_preview_s", "real_preview_s"),
    ]  # fmt: skip
    cells = [[title for _, title in columns]] + [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells)


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, judged on this run's figures."""
    lines = []
    for row in rows:
        if row.get("ratio_full_bare") is not None:
            ok = row["ratio_full_bare"] <= 1.3
            lines.append(f"{row['services']} services: full preview / bare SDK = {row['ratio_full_bare']:.2f} (target <= 1.3: {'ok' if ok else 'MISSED'})")
        if row.get("ratio_checkov_check") is not None:
            ok = row["ratio_checkov_check"] >= 20
            lines.append(f"{row['services']} services: checkov / tools.check = {row['ratio_checkov_check']:.1f}x (target >= 20x: {'ok' if ok else 'MISSED'})")
    by_size = {row["services"]: row for row in rows}
    if 100 in by_size and 1000 in by_size:
        ratio = by_size[1000]["per_resource_ms"] / by_size[100]["per_resource_ms"]
        lines.append(f"per-resource cost, 1,000 vs 100 services: {ratio:.2f}x (target <= 1.2: {'ok' if ratio <= 1.2 else 'MISSED'})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="numbers of services, comma-separated")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON (default build/bench.json)")
    parser.add_argument("--no-checkov", action="store_true", help="skip checkov even if it is installed")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--manifests", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # one phase of one size, in this fresh process; the result is the last line printed
        phase, value = args.child
        if phase == "preview":
            result = measure_preview(int(value), args.manifests, args.spec, args.repeat)
        else:
            result = measure_bare(Path(value), args.repeat)
        print(json.dumps(result))
        return 0

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    info = machine()
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, pulumi {info['pulumi']}, "
          f"pulumi-policy {info['pulumi_policy']}, jsonschema {info['jsonschema']}")  # fmt: skip
    checkov = None if args.no_checkov else checkov_command()
    print(f"checkov: {' '.join(checkov) if checkov else 'not installed (checkov_s: null; see requirements-bench.txt)'}")
    rows = []
    for services in sizes:
        print(f"measuring {services} services ...", file=sys.stderr, flush=True)
        rows.append({**measure(services, checkov=not args.no_checkov), "machine": info})
    real_sizes = [size for size in sizes if size in real_preview.REAL_SIZES]
    bin_dir = e2e_run.built_toolchain() if real_sizes else None
    if real_sizes and bin_dir is None:
        print("real_preview_s: the e2e toolchain is not built (make toolchain); null")
    elif real_sizes:
        print(f"measuring a real pulumi preview at {real_sizes} services ...", file=sys.stderr, flush=True)
        real = real_preview.real_preview_seconds(real_sizes, bin_dir, synthetic_config)
        for row in rows:
            row["real_preview_s"] = real.get(row["services"])
            if row["real_preview_s"]:
                row["ratio_real_offline"] = round(row["real_preview_s"] / row["preview_full_s"], 2)
    print(table(rows))
    for line in targets(rows):
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
