"""Stack files read by the real CLI and by tools.stack_yaml: the program must get the same config from both.

    python -m e2e.yaml_parity            compare the CLI, tools.stack_yaml and the recorded readings
    python -m e2e.yaml_parity --record   also rewrite tests/stack_yaml/expected.json from the CLI's readings

Each file of tests/stack_yaml/corpus/ becomes a stack file of a throwaway project; `pulumi config --json` prints
what the CLI read (or refuses the file). `make test` compares tools.stack_yaml with the recorded readings
(tests/test_stack_yaml.py); `make e2e` runs this module, so the recordings are re-proved against the real CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools import engine, stack_yaml

CORPUS = engine.PROJECT_DIR / "tests" / "stack_yaml" / "corpus"
EXPECTED = engine.PROJECT_DIR / "tests" / "stack_yaml" / "expected.json"
STACK = "parity"


def program_view(text: str, is_json: bool) -> Any:
    """A config value as the program sees it: structured values are JSON text it decodes."""
    return json.loads(text) if is_json else text


def offline_reading(data: bytes, name: str) -> dict[str, Any]:
    """What tools.stack_yaml (so tools.preview and the tests) makes of a stack file."""
    try:
        document = stack_yaml.loads(data, name) or {}
        config = document.get("config") or {}
        return {"refused": False, "config": {key: program_view(*stack_yaml.config_string(value)) for key, value in config.items()}}
    except (stack_yaml.StackYamlError, ValueError) as error:
        return {"refused": True, "message": str(error)}


def cli_reading(pulumi: Path, project: Path, env: dict[str, str], data: bytes) -> dict[str, Any]:
    """What the real CLI makes of a stack file: `pulumi config --json`, or its refusal."""
    (project / f"Pulumi.{STACK}.yaml").write_bytes(data)
    result = subprocess.run(
        [str(pulumi), "config", "--json", "--stack", STACK, "--non-interactive"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if result.returncode != 0:
        return {"refused": True, "message": result.stderr.strip().splitlines()[0] if result.stderr.strip() else ""}
    entries = json.loads(result.stdout)
    return {
        "refused": False,
        "config": {key: program_view(entry["value"], "objectValue" in entry) for key, entry in entries.items()},
    }


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal readings: both refuse (the messages differ in wording), or the same keys with the same typed values."""
    if a["refused"] or b["refused"]:
        return a["refused"] == b["refused"]
    return _typed(a["config"]) == _typed(b["config"])


def _typed(value: Any) -> Any:
    """The value with every leaf tagged by its JSON type, so that 1 and 1.0 (or 1 and true) do not compare equal."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return ("number", int(value))  # Go writes an integral float64 as an integer: JSON does not tell them apart
    return (type(value).__name__ if not isinstance(value, (int, float)) or isinstance(value, bool) else "number", value)


def check(pulumi: Path, work: Path, record: bool = False) -> dict[str, Any]:
    """Every corpus file read three ways; the result names each file on which any two readings differ."""
    project = work / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "Pulumi.yaml").write_text(f"name: {engine.project_name()}\nruntime: python\n")
    env = {
        **os.environ,
        "PULUMI_HOME": str(work / "home"),
        "PULUMI_BACKEND_URL": (work / "state").as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "parity",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "TZ": "UTC",  # Go names a time's zone after the machine's local zone; tools.stack_yaml assumes UTC
    }
    (work / "state").mkdir(exist_ok=True)
    subprocess.run(
        [str(pulumi), "stack", "init", STACK, "--non-interactive"], cwd=project, env=env, check=True,
        capture_output=True, timeout=120,
    )  # fmt: skip
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() and not record else {}
    recorded, disagreements = {}, []
    files = sorted(CORPUS.glob("*.yaml"))
    for path in files:
        data = path.read_bytes()
        real = cli_reading(pulumi, project, env, data)
        offline = offline_reading(data, path.name)
        recorded[path.name] = real
        if not same(real, offline):
            disagreements.append(f"{path.name}: the CLI read {real}, tools.stack_yaml {offline}")
        if not record and (path.name not in expected or not same(real, expected[path.name])):
            disagreements.append(f"{path.name}: the CLI read {real}, tests/stack_yaml/expected.json says {expected.get(path.name)}")
    if record:
        EXPECTED.write_text(json.dumps(recorded, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return {"files": len(files), "agree": not disagreements and bool(files), "disagreements": disagreements}


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from e2e.run import toolchain_bin

    parser = argparse.ArgumentParser(prog="python -m e2e.yaml_parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="rewrite tests/stack_yaml/expected.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        result = check(toolchain_bin() / "pulumi", Path(work), record=args.record)
    print(json.dumps(result, indent=2))
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
