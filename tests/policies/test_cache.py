"""cache-requires-auth and cache-reachable-only-by-users: passing and failing manifests, through the analyzer as the
CLI runs the pack, and the platform's own Cache passing both."""

from __future__ import annotations

import copy

import pytest

from components.cache import Cache, CacheArgs
from components.cache_config import CacheConfig
from policies import cache as cache_rules
from tests.helpers import register
from tests.policies.test_stack_rules import network_policy, resource
from tools.analyzer import analyze, analyze_manifests

NS = "apps"
AUTH = "cache-requires-auth"
ISOLATION = "cache-reachable-only-by-users"


def redis_statefulset(*, env=None, args=None, command=None, volumes=None, mounts=None, image="docker.io/library/redis:7.2.5"):
    container = {"name": "redis", "image": image, "ports": [{"name": "redis", "containerPort": 6379}]}
    for key, value in (("env", env), ("args", args), ("command", command), ("volumeMounts", mounts)):
        if value is not None:
            container[key] = value
    spec = {"containers": [container], **({"volumes": volumes} if volumes else {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "redis", "namespace": NS},
        "spec": {
            "serviceName": "redis",
            "selector": {"matchLabels": {"app": "redis"}},
            "template": {"metadata": {"labels": {"app": "redis"}}, "spec": spec},
        },
    }


PASSWORD_ENV = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "password"}}}]


def auth_findings(obj):
    return [f.message for f in analyze_manifests([obj], policies=[cache_rules.cache_requires_auth]) if f.policy == AUTH]


def test_a_password_from_a_secret_passes():
    assert auth_findings(redis_statefulset(env=PASSWORD_ENV, args=["--requirepass", "$(PASSWORD)"])) == []
    mounted = redis_statefulset(
        command=["redis-server", "/etc/redis/redis.conf"],
        volumes=[{"name": "conf", "secret": {"secretName": "redis-conf"}}],
        mounts=[{"name": "conf", "mountPath": "/etc/redis"}],
    )
    assert auth_findings(mounted) == []


@pytest.mark.parametrize(
    "variant, fragment",
    [
        ({}, "reads no password from a Secret"),
        ({"image": "ghcr.io/valkey-io/valkey:8.1.4@sha256:" + "a" * 64}, "reads no password from a Secret"),
        ({"env": [*PASSWORD_ENV, {"name": "ALLOW_EMPTY_PASSWORD", "value": "yes"}]}, "ALLOW_EMPTY_PASSWORD=yes runs the cache without a password"),
        ({"env": PASSWORD_ENV, "args": ["--protected-mode", "no"]}, "turns protected mode off without a password"),
        ({"command": ["valkey-sentinel", "/etc/sentinel.conf"], "image": "valkey/valkey:8.1.4"}, "reads no password from a Secret"),
    ],
)
def test_a_cache_without_a_password_from_a_secret_fails(variant, fragment):
    findings = auth_findings(redis_statefulset(**variant))
    assert len(findings) == 1 and fragment in findings[0], findings
    assert findings[0].startswith("spec.template.spec.containers[0]")


def test_clients_of_a_cache_image_are_not_servers():
    client = redis_statefulset(command=["sh", "-c", "valkey-cli ping"], image="valkey/valkey:8.1.4")
    other = redis_statefulset(image="docker.io/oliver006/redis_exporter:v1.67.0")
    assert auth_findings(client) == [] and auth_findings(other) == []


def stack_findings(resources):
    return [f.message for f in analyze(resources, policies=cache_rules.POLICIES) if f.policy == ISOLATION]


def server(**variant):
    return resource(redis_statefulset(env=PASSWORD_ENV, args=["--requirepass", "$(PASSWORD)"], **variant))


def ingress_from(*peers, port=6379):
    return network_policy("redis", {"podSelector": {"matchLabels": {"app": "redis"}}, "policyTypes": ["Ingress"], "ingress": [{"from": list(peers), "ports": [{"port": port}]}]})


API = {"podSelector": {"matchLabels": {"app": "api"}}}


def test_a_cache_its_users_alone_reach_passes():
    assert stack_findings([server(), ingress_from(API)]) == []
    keda = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}, "podSelector": {"matchLabels": {"app": "keda-operator"}}}
    assert stack_findings([server(), ingress_from(API, keda)]) == []
    # Prometheus' whole namespace on the exporter's port is not the server's port.
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert stack_findings([server(), ingress_from(API), ingress_from(monitoring, port=9121)]) == []


@pytest.mark.parametrize(
    "policies, fragment",
    [
        ([], "no NetworkPolicy in namespace 'apps' selects the cache pods"),
        ([ingress_from()], "lets any source (spec.ingress[].from is empty) reach the cache"),
        ([ingress_from({"podSelector": {}})], "any pod in the namespace"),
        ([ingress_from({"namespaceSelector": {"matchLabels": {"team": "a"}}})], "every pod of the selected namespaces"),
        ([ingress_from({"ipBlock": {"cidr": "10.0.0.0/8"}})], "an address range (ipBlock 10.0.0.0/8)"),
    ],
)
def test_a_cache_reachable_beyond_its_users_fails(policies, fragment):
    findings = stack_findings([server(), *policies])
    assert len(findings) == 1 and fragment in findings[0], findings


def test_the_platforms_cache_passes_both_and_fails_when_opened():
    config = CacheConfig.model_validate(
        {
            "name": "sessions",
            "usedBy": ["api"],
            "replicas": 2,
            "failover": {},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        }
    )
    resources = register(lambda: Cache("sessions", CacheArgs(cache=config, namespace=NS)))
    assert [f for f in analyze(resources, policies=cache_rules.POLICIES)] == []
    opened = []
    for r in resources:
        if r.inputs.get("kind") == "NetworkPolicy" and r.inputs["metadata"]["name"] == "sessions-data":
            inputs = copy.deepcopy(r.inputs)
            inputs["spec"]["ingress"][0]["from"] = [{"podSelector": {}}]
            r = type(r)(**{**r.__dict__, "inputs": inputs})
        opened.append(r)
    assert len(stack_findings(opened)) == 1
    # Without the password's Secret the auth rule refuses the data nodes and the Sentinels.
    stripped = []
    for r in resources:
        if r.inputs.get("kind") == "StatefulSet":
            inputs = copy.deepcopy(r.inputs)
            spec = inputs["spec"]["template"]["spec"]
            spec["volumes"] = [v for v in spec["volumes"] if "secret" not in v]
            for container in spec["containers"] + spec["initContainers"]:
                container["env"] = [v for v in container.get("env", []) if "valueFrom" not in v or "secretKeyRef" not in v["valueFrom"]]
            r = type(r)(**{**r.__dict__, "inputs": inputs})
        stripped.append(r)
    findings = [f for f in analyze(stripped, policies=cache_rules.POLICIES) if f.policy == AUTH]
    assert len(findings) == 2  # the data node's server and the Sentinel
