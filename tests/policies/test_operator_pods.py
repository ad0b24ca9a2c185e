"""The pack judges the pod CloudNativePG builds from a Pooler (policies/operator_pods.py), not the Pooler's template."""

from __future__ import annotations

import copy

from policies import workload
from policies.operator_pods import OPERATOR_CONTAINER_SECURITY_CONTEXT, POOLER_POD_SECURITY_CONTEXT, cnpg_pooler_pod_spec
from tests.policies.conftest import policies_hit, run

SIZED = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}


def pooler(template_spec: dict) -> dict:
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Pooler",
        # Its instance manager reads the Pooler: it needs a token (as components/connection_pooler.py says).
        "metadata": {"name": "orders-pooler-rw", "namespace": "shop", "annotations": {workload.ALLOW_TOKEN_ANNOTATION: "true"}},
        "spec": {"cluster": {"name": "orders"}, "instances": 2, "type": "rw", "template": {"spec": template_spec}},
    }


def pgbouncer(**extra) -> dict:
    return {"name": "pgbouncer", "image": "ghcr.io/cloudnative-pg/pgbouncer:1.25.1", "resources": SIZED, **extra}


def test_the_operator_replaces_both_security_contexts_and_adds_its_init_container():
    dead = {"privileged": True, "runAsUser": 0}
    spec = cnpg_pooler_pod_spec({"securityContext": {"runAsUser": 0}, "containers": [pgbouncer(securityContext=dead)]})
    assert spec["securityContext"] == POOLER_POD_SECURITY_CONTEXT
    assert spec["containers"][0]["securityContext"] == OPERATOR_CONTAINER_SECURITY_CONTEXT
    [bootstrap] = spec["initContainers"]
    assert bootstrap["name"] == "bootstrap-controller" and bootstrap["securityContext"] == OPERATOR_CONTAINER_SECURITY_CONTEXT
    assert bootstrap["resources"] == {}  # nothing says how big: the LimitRange default would apply


def test_the_bootstrap_container_takes_the_declared_resources_else_the_pod_level_ones():
    declared = cnpg_pooler_pod_spec({"containers": [pgbouncer()], "initContainers": [{"name": "bootstrap-controller", "resources": SIZED}]})
    assert declared["initContainers"][0]["resources"] == SIZED
    pod_level = cnpg_pooler_pod_spec({"containers": [pgbouncer()], "resources": {"limits": {"cpu": "1"}}})
    assert pod_level["initContainers"][0]["resources"] == {"limits": {"cpu": "1"}}


def test_the_template_is_not_changed_in_place():
    template = {"containers": [pgbouncer()]}
    before = copy.deepcopy(template)
    cnpg_pooler_pod_spec(template)
    assert template == before


def test_the_pack_flags_the_unsized_bootstrap_container_and_not_the_dead_security_context():
    unsized = run([pooler({"containers": [pgbouncer()]})])
    assert "workload-resources" in policies_hit(unsized)
    assert any('container "bootstrap-controller"' in finding.message for finding in unsized)
    # A template securityContext that would fail restricted never reaches the API server: not a finding.
    sized = pooler({
        "securityContext": {"runAsUser": 0},
        "containers": [pgbouncer(securityContext={"privileged": True, "allowPrivilegeEscalation": True})],
        "initContainers": [{"name": "bootstrap-controller", "resources": SIZED}],
    })  # fmt: skip
    assert run([sized]) == []


def test_the_platform_clusters_leave_the_security_context_to_the_operator_as_the_model_assumes(rendered):
    """CloudNativePG builds the pooler's securityContexts from its Cluster's securityContext and seccompProfile; the
    model assumes the defaults (neither set)."""
    for rendering in rendered.values():
        for obj in rendering.kubernetes_objects():
            if obj["kind"] == "Cluster":
                assert "securityContext" not in obj["spec"] and "seccompProfile" not in obj["spec"]
