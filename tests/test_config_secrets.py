"""Secrets refused at config time: a plain value the policy pack would call a secret is a config error.

stack_config.py judges a service's plain `env` (its ConfigMap's data) and the labels/annotations the stack sets
with the pack's own detectors (policies/secret_detectors.py), so a leaked secret stops the program before anything
is registered, in every stack, with the `pulumi config set --secret` fix and a pointer to `secretEnv`.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

import stack_config
from policies import secret_detectors, secrets
from tests.policies.test_secrets import AWS_KEY_ID, JWT, RANDOM_TOKEN, SECRETS
from tests.test_config import PROJECT, load, stack_values, web
from tools import engine
from tools.analyzer import analyze_manifests

STACKS = ("local", "staging", "prod")
# What the pack calls a secret in env values (by name, by shape, known token formats) is a config error too,
# plus cases only config has to care about.
SECRET_ENV = SECRETS + [
    ("PGPASSWORD", "hunter2", "secret-sounding name"),
    ("UPSTREAM", "https://deploy:hunter2@git.example.com/repo.git", "user:password"),
    ("GITLAB", "glpat-" + "x1Y2z3" * 4, "GitLab token"),
    ("PAYMENTS", "sk_live_" + "a1B2c3D4" * 3, "Stripe secret key"),
    ("APP_PROPERTIES", "log.level=info\ndb.password=hunter2\n", "has a line 'db.password'"),  # a whole config file
]

# The pack's false-positive guards, at config level: settings about secrets, references, non-secret values.
NOT_SECRET_ENV = [
    ("TOKEN_TTL_SECONDS", "3600"),
    ("TOKEN_TTL", "1h"),
    ("DB_PASSWORD_FILE", "/run/secrets/db-password"),
    ("PASSWORD_MIN_LENGTH", "12"),
    ("SECRET_NAME", "app-creds"),
    ("API_TOKEN_REQUIRED", "false"),
    ("DB_PASSWORD", ""),
    ("DB_PASSWORD", "$(DB_PASSWORD_FROM_SECRET)"),
    ("DATABASE_URL", "postgres://app:$(DB_PASSWORD)@db-rw:5432/app"),
    ("DATABASE_URL", "postgres://app:${DB_PASSWORD}@db-rw:5432/app"),
    ("OAUTH_TOKEN_URL", "https://auth.example.com/oauth/token"),
    ("DB_HOST", "db-rw.platform.svc.cluster.local"),
    ("GIT_SHA", "3f2a9c1e4b5d6a7f8e9d0c1b2a3f4e5d6c7b8a9f"),
    ("REQUEST_ID_NAMESPACE", "123e4567-e89b-12d3-a456-426614174000"),
    ("SERVICE_CLASS", "MyApplicationServiceName2024"),
    ("JAVA_OPTS", "-Xmx512m -XX:+UseG1GC"),
    ("SESSION_TIMEOUT", "30m"),
    ("APP_PROPERTIES", "log.level=info\ndb.password.file=/run/secrets/db\n"),
]


def with_env(stack: str, name: str, value: str) -> tuple[dict, set[str]]:
    values, secret_keys = stack_values(stack)
    values = copy.deepcopy(values)
    web(values)["env"][name] = value
    return values, secret_keys


def env_problems(stack: str, name: str, value: str) -> list[str]:
    values, secret_keys = with_env(stack, name, value)
    with pytest.raises(stack_config.ConfigError) as raised:
        load(values, secret_keys, stack)
    return raised.value.problems


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("name", "value", "reason"), SECRET_ENV, ids=[case[0] + "-" + case[2].split()[-1] for case in SECRET_ENV])
def test_secret_looking_plain_env_fails_config_in_every_stack(stack, name, value, reason):
    [problem] = env_problems(stack, name, value)
    assert problem.startswith(f"{PROJECT}:services[0].env.{name}: "), problem
    assert reason in problem
    key = "web-" + name.lower().replace("_", "-")
    assert f"`pulumi config set --secret --stack {stack} {key} <value>`" in problem
    assert f"'secretEnv' ({name}: {key})" in problem
    assert f"Pulumi.{stack}.yaml" in problem
    assert value.strip() not in problem  # config errors end up in CI logs: never the value itself


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("name", "value"), NOT_SECRET_ENV, ids=[f"{n}={v[:12]}" for n, v in NOT_SECRET_ENV])
def test_settings_about_secrets_and_references_pass_in_every_stack(stack, name, value):
    values, secret_keys = with_env(stack, name, value)
    config = load(values, secret_keys, stack)
    assert config.services[0].env[name] == value


def test_secret_env_is_reported_with_every_other_problem():
    values, secret_keys = stack_values("staging")
    values = copy.deepcopy(values)
    web(values)["env"]["DB_PASSWORD"] = "hunter2"
    values["services"][1]["env"]["UPSTREAM_TOKEN"] = "ghp_" + "a1B2" * 9
    web(values)["image"] = "web:latest"
    values["namespace"] = "default"
    secret_keys.discard("api-token")
    with pytest.raises(stack_config.ConfigError) as raised:
        load(values, secret_keys, "staging")
    paths = [problem.split(": ", 1)[0] for problem in raised.value.problems]
    assert paths == [
        "platform:namespace",
        "platform:services[0].image",
        "platform:api-token",
        "platform:services[0].env.DB_PASSWORD",
        "platform:services[1].env.UPSTREAM_TOKEN",
    ]
    assert "pulumi config set --secret --stack staging api-web-upstream-token" not in str(raised.value)
    assert "pulumi config set --secret --stack staging api-upstream-token <value>" in str(raised.value)


def test_secret_env_is_reported_even_when_the_rest_of_the_service_is_invalid():
    values, secret_keys = with_env("local", "DB_PASSWORD", "hunter2")
    web(values)["name"] = "Not A DNS Label"
    web(values).pop("resources")
    with pytest.raises(stack_config.ConfigError) as raised:
        load(values, secret_keys)
    joined = "\n".join(raised.value.problems)
    assert "platform:services[0].resources: missing" in joined
    # No valid service name to build a key from: a generic one, still a valid config key.
    assert "`pulumi config set --secret --stack local service-db-password <value>`" in joined


def token_in_selector_label(values):
    values["monitoring"]["selectorLabels"]["release"] = RANDOM_TOKEN


def key_id_in_ingress_annotation(values):
    ingress = values["ingress"]
    ingress.update(mode="ingress", ingressClassName="traefik", annotations={"example.com/auth": AWS_KEY_ID})
    ingress.pop("timeouts")
    ingress.pop("gatewayClassName")


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (token_in_selector_label, 'platform:monitoring.selectorLabels.release'),
        (key_id_in_ingress_annotation, 'platform:ingress.annotations["example.com/auth"]'),
    ],
    ids=["selector-label", "ingress-annotation"],
)
def test_secret_shaped_labels_and_annotations_fail_config(mutate, path):
    values, secret_keys = stack_values("local")
    values = copy.deepcopy(values)
    mutate(values)
    with pytest.raises(stack_config.ConfigError) as raised:
        load(values, secret_keys)
    [problem] = [p for p in raised.value.problems if p.startswith(path)]
    assert "looks like a" in problem and "label or annotation" in problem
    assert "pulumi config set --secret --stack local <key> <value>" in problem


@pytest.mark.parametrize("stack", STACKS)
def test_a_credential_anywhere_else_in_plain_config_fails(stack):
    values, secret_keys = stack_values(stack)
    values = copy.deepcopy(values)
    values["backups"]["endpoint"] = "https://minio:s3cret-key@minio.example.com"
    values["monitoring"]["runbookUrlTemplate"] = "https://runbooks.example.com/{alert}?jwt=" + JWT
    with pytest.raises(stack_config.ConfigError) as raised:
        load(values, secret_keys, stack)
    problems = {p.split(": ", 1)[0]: p for p in raised.value.problems}
    endpoint = problems["platform:backups.endpoint"]
    assert "looks like a URL with an embedded user:password" in endpoint
    assert f"plain config is stored in plaintext in Pulumi.{stack}.yaml" in endpoint
    assert f"`pulumi config set --secret --stack {stack} <key> <value>`" in endpoint
    assert "JSON Web Token" in problems["platform:monitoring.runbookUrlTemplate"]
    assert "s3cret" not in str(raised.value) and JWT not in str(raised.value)


def test_program_stops_before_registering_anything_on_a_plain_secret_env():
    config, secret_keys = engine.stack_config("prod")
    services = json.loads(config["platform:services"])
    services[1]["env"]["DATABASE_URL"] = "postgres://app:s3cret@db-rw:5432/app"
    config["platform:services"] = json.dumps(services)
    with pytest.raises(engine.ProgramError) as raised:
        engine.render("prod", config=config, secret_keys=secret_keys)
    message = str(raised.value)
    assert "platform:services[1].env.DATABASE_URL: looks like a URL with an embedded user:password" in message
    assert "pulumi config set --secret --stack prod api-database-url <value>" in message
    assert "s3cret" not in message
    assert raised.value.registered == []


def test_other_config_errors_do_not_echo_a_secret_looking_value():
    values, secret_keys = stack_values("local")
    values = copy.deepcopy(values)
    web(values)["env"]["DB_PASSWORD"] = 12345678  # not a string: a type error, under a secret name
    values["namespace"] = "https://deploy:s3cret@example.com"  # pasted into the wrong key
    with pytest.raises(stack_config.ConfigError) as raised:
        load(values, secret_keys)
    message = str(raised.value)
    assert "platform:services[0].env.DB_PASSWORD: Input should be a valid string (the value is not shown" in message
    assert "platform:namespace: not lower-case letters, digits and '-'" in message
    assert "12345678" not in message and "s3cret" not in message


# --- one set of detectors: the config check and the pack agree ---------------------------------------------


def test_the_pack_and_stack_config_share_the_detectors():
    for name in ("judge", "judge_text", "secret_shape", "is_secret_name", "cannot_be_secret", "looks_random"):
        assert getattr(secrets, name) is getattr(secret_detectors, name), name
    assert stack_config.judge_text is secret_detectors.judge_text
    assert stack_config.secret_shape is secret_detectors.secret_shape


def test_validating_config_does_not_load_the_policy_sdk():
    code = "import sys, stack_config; print(sorted(m for m in sys.modules if m.startswith(('pulumi', 'policies'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=engine.PROJECT_DIR)
    assert result.stdout.strip() == "['policies', 'policies.secret_detectors']"


def configmap(name: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": "platform"}, "data": {name: value}}


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, value, _ in SECRET_ENV] + NOT_SECRET_ENV,
    ids=[f"secret-{case[0]}" for case in SECRET_ENV] + [f"setting-{case[0]}" for case in NOT_SECRET_ENV],
)
def test_config_refuses_exactly_what_the_pack_flags_in_the_configmap(name, value):
    values, secret_keys = with_env("local", name, value)
    try:
        load(values, secret_keys)
        refused = False
    except stack_config.ConfigError as error:
        refused = any(problem.startswith(f"{PROJECT}:services[0].env.") for problem in error.problems)
    flagged = analyze_manifests([configmap(name, value)], policies=secrets.POLICIES)
    assert refused == bool(flagged), (refused, flagged)
