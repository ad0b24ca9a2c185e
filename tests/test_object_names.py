"""Config entries never make one Kubernetes object twice (components/object_names.py, checked by stack_config)."""

from __future__ import annotations

import copy
import json

import pytest

import stack_config
from components import object_names
from tests.test_config import load, stack_values
from tools import engine

# Kinds whose names come from other settings (hosts, grants, the namespace): not derived from entry names.
ELSEWHERE = {
    "AlertmanagerConfig", "Certificate", "Gateway", "GatewayClass", "HTTPRoute", "Issuer", "ClusterIssuer", "LimitRange",
    "Namespace", "PrometheusRule", "ReferenceGrant", "ResourceQuota", "Role", "RoleBinding", "Job",
}  # fmt: skip


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_the_table_names_every_object_the_entries_make(stack):
    """Every rendered object of an entry-derived kind is in the table under its entry: a component that starts
    making a new object fails here until the table (and so the config check) knows it."""
    config, secret_keys = engine.stack_config(stack)
    values = {key.split(":", 1)[1]: json.loads(value) if value[:1] in "[{" else value for key, value in config.items()}
    claimed = object_names.claims(values)
    rendering = engine.render(stack, config=config, secret_keys=secret_keys)
    unexplained = []
    for obj in map(engine.unwrap_secrets, rendering.kubernetes_objects()):
        kind, name = obj["kind"], obj["metadata"].get("name")
        if kind in ELSEWHERE or obj["metadata"].get("namespace") not in (None, values["namespace"]):
            continue
        if not any(kind == k and object_names._same_object(name, pattern) for k, pattern, _ in claimed):
            unexplained.append(f"{kind} {name}")
    assert unexplained == []


def test_one_off_jobs_are_claimed_with_their_hash():
    made = object_names.claims({"services": [{"name": "api", "migrations": {"command": ["m"]}, "tasks": [{"name": "seed"}]}]})
    jobs = sorted(name for kind, name, _ in made if kind == "Job")
    assert jobs == [f"api-migrations-{object_names.HASH}", f"api-seed-{object_names.HASH}"]


def with_service(name: str):
    def mutate(values, secret_keys):
        neighbour = copy.deepcopy(values["services"][1])
        neighbour.update(name=name)
        for key in ("migrations", "secretEnv", "tasks"):
            neighbour.pop(key, None)
        values["services"].append(neighbour)

    return mutate


def collision_problems(name: str) -> list[str]:
    """The collision problems of staging with one more service; `services[N]` in them reads as the new one."""
    values, secret_keys = stack_values("staging")
    new = f"services[{len(values['services'])}]"
    with_service(name)(values, secret_keys)
    try:
        load(values, secret_keys, "staging")
    except stack_config.ConfigError as error:
        return [p.replace(new, "services[N]") for p in error.problems if "two resources cannot be one object" in p]
    return []


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("orders-database", "platform:databases[0].name: 'orders' would make NetworkPolicy 'orders-database', which services[N] ('orders-database') makes too"),
        ("orders-rw", "platform:databases[0].name: 'orders' would make Service 'orders-rw', which services[N] ('orders-rw') makes too"),
        ("orders-pooler-rw", "platform:databases[0].name: 'orders' would make NetworkPolicy 'orders-pooler-rw', PodDisruptionBudget"),
        ("default-deny", "platform:services[N].name: 'default-deny' would make NetworkPolicy 'default-deny', which the namespace makes for itself too"),
        ("cache-sentinel", "platform:caches[0].name: 'cache' would make"),
    ],
)  # fmt: skip
def test_a_neighbour_that_remakes_an_object_is_refused_once_naming_both(service, expected):
    [problem] = collision_problems(service)
    assert problem.startswith(expected), problem
    assert problem.endswith("(`pulumi up` fails with 'already exists'). Rename one")


def test_distinct_names_that_only_look_alike_pass():
    assert collision_problems("orders-api") == []
    assert collision_problems("api-two") == []
