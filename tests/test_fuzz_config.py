"""Fuzzed stack config (hypothesis): generated configs, valid ones and mutations of them (tests/fuzz_strategies.py).

Properties:
  * a valid config loads; an invalid one is always a `ConfigError` listing problems that each start with a
    `platform:` key path, never another exception (tested with `stack_config.load` alone: fast);
  * whatever `load` accepts renders (engine.render, the real program under the mocks) to schema-valid objects
    (tools.schemas) with unique identities, Services named as the API server wants, and that the policy pack
    (tools.analyzer with policies/config/<stack>.json) finds clean: no finding at all, so the local stack's
    advisory config does not make the check vacuous. Rendering costs ~0.2-0.5 s, so this property has its own,
    smaller example count.

Profiles (HYPOTHESIS_PROFILE): `small` (the default, what `make test` runs: a few hundred loads and a dozen
renders, derandomized so the suite is deterministic, well under 20 s) and `fuzz` (`make fuzz`: 10,000 valid and
10,000 mutated configs through `load`, 600 renders, random, failures saved under build/hypothesis). Each test
prints how many examples it ran (`pytest -s`).
"""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

import stack_config
from tests import fuzz_strategies as fs
from tools import analyzer, engine, schemas

_COMMON = dict(
    deadline=None,  # rendering takes ~0.3 s, and a shared CPU makes any deadline flaky
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("small", derandomize=True, database=None, **_COMMON)
settings.register_profile("fuzz", database=DirectoryBasedExampleDatabase(str(engine.PROJECT_DIR / "build" / "hypothesis")), **_COMMON)
COUNTS = {
    "small": {"valid": 60, "mutated": 200, "render": 12},
    "fuzz": {"valid": 10_000, "mutated": 10_000, "render": 600},
}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "small")
PROFILE = PROFILE if PROFILE in COUNTS else "small"  # another project-wide profile name: the suite's own default
EXAMPLES = COUNTS[PROFILE]


def profile(test: str) -> settings:
    return settings(settings.get_profile(PROFILE), max_examples=EXAMPLES[test])


def report(test: str, counts: Counter) -> None:
    ran = sum(counts[key] for key in ("loaded", "refused", "rendered"))
    detail = ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
    print(f"\nfuzz[{PROFILE}] {test}: {ran} examples ({detail})")


# A problem starts with `platform:` and a key path (`pulumi config set --path` syntax: a.b[0]["odd key"], or <config>
# for the whole config), then ': ' and the explanation.
KEY_PATH = r'(<config>|[A-Za-z0-9][A-Za-z0-9_.-]*(\.[A-Za-z0-9_-]+|\[\d+\]|\["([^"\\]|\\.)*"\])*)'
PROBLEM = re.compile(rf"^platform:{KEY_PATH}: \S")


def assert_problems_name_key_paths(error: stack_config.ConfigError, case: fs.Case) -> None:
    assert error.problems, "a ConfigError with no problems"
    assert error.stack_file == f"Pulumi.{case.stack}.yaml"
    for problem in error.problems:
        assert PROBLEM.match(problem), problem


# --- load: valid configs load, invalid ones are ConfigErrors naming platform: key paths -------------------------


def test_valid_configs_load():
    counts: Counter = Counter()

    @profile("valid")
    @given(fs.valid_case())
    def check(case: fs.Case) -> None:
        try:
            config = case.load()
        except stack_config.ConfigError as error:
            pytest.fail(f"a valid config was refused:\n{error}")
        assert config.environment.value == case.stack
        assert [service.name for service in config.services] == [s["name"] for s in case.values["services"]]
        counts["loaded"] += 1
        counts[case.stack] += 1

    try:
        check()
    finally:
        report("valid configs load", counts)
    assert counts["loaded"] >= EXAMPLES["valid"] // 2


def test_invalid_configs_are_config_errors_naming_key_paths():
    counts: Counter = Counter()

    @profile("mutated")
    @given(fs.mutated_case())
    def check(case: fs.Case) -> None:
        try:
            case.load()  # anything but ConfigError propagates and fails the property
        except stack_config.ConfigError as error:
            assert_problems_name_key_paths(error, case)
            counts["refused"] += 1
        else:
            counts["loaded"] += 1  # e.g. an optional key dropped: still a valid config
        counts.update(f"mutation:{kind}" for kind in case.mutations)

    try:
        check()
    finally:
        report("mutated configs", counts)
    assert counts["refused"] > counts["loaded"]


# --- render: what load accepts renders, schema-valid and clean under the pack --------------------------------------

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def api_group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def render_problems(case: fs.Case) -> list[str]:
    config, secret_keys = case.engine_config()
    rendering = engine.render(case.stack, config=config, secret_keys=secret_keys)
    objects = rendering.kubernetes_objects()
    problems = [f"schema: {error}" for error in schemas.validate_all(objects)]
    seen: dict[tuple, int] = {}
    for obj in (engine.unwrap_secrets(o) for o in objects):
        metadata = obj.get("metadata") or {}
        identity = (api_group(obj["apiVersion"]), obj["kind"], metadata.get("namespace"), metadata.get("name"))
        if metadata.get("name") is not None:
            seen[identity] = seen.get(identity, 0) + 1
        if obj["kind"] == "Service" and obj["apiVersion"] == "v1" and not DNS_1035.match(metadata.get("name", "")):
            problems.append(f"Service name {metadata.get('name')!r} is not a DNS-1035 label (the API server refuses it)")
    problems += [f"two objects are {identity}" for identity, count in seen.items() if count > 1]
    policy_config = analyzer.load_policy_config(engine.PROJECT_DIR / "policies" / "config" / f"{case.stack}.json")
    findings = analyzer.analyze(rendering.resources, policy_config=policy_config)
    problems += [f"policy {f.policy} ({f.enforcement}) on {f.name}: {f.message}" for f in findings]
    return problems


# Mostly generated valid configs with any env values (secret-looking or not) and runbook templates (maybe with a
# format spec); one in six a mutated config, rendered when `load` still accepts it.
renderable_case = st.integers(0, 5).flatmap(
    lambda pick: fs.mutated_case() if pick == 0 else fs.valid_case(env_values=fs.any_env, runbook_templates=fs.runbook_template)
)


def test_what_load_accepts_renders_schema_valid_and_policy_clean():
    counts: Counter = Counter()

    @profile("render")
    @given(renderable_case)
    def check(case: fs.Case) -> None:
        try:
            case.load()
        except stack_config.ConfigError as error:
            assert_problems_name_key_paths(error, case)
            if not case.mutations:
                # A generated config differs from a valid one only in its env values (any text, secret-looking or
                # not) and its runbook template (maybe with a format spec), so only those may be refused.
                allowed = r'^platform:(services\[\d+\]\.env[.\[]|monitoring\.runbookUrlTemplate: )'
                unexpected = [p for p in error.problems if not re.match(allowed, p)]
                assert not unexpected, unexpected
            counts["refused"] += 1
            return
        problems = render_problems(case)
        assert not problems, "\n".join(problems)
        counts["rendered"] += 1
        counts[case.stack] += 1

    try:
        check()
    finally:
        report("render", counts)
    assert counts["rendered"] >= EXAMPLES["render"] // 3
