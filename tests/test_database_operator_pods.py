"""What CloudNativePG and its Barman Cloud plugin build from the database's objects (found by `make e2e`, issue 19,
and the spread of issue 16): every container they add is sized by the spec, not by the LimitRange default, and the
pods spread as the stack asks."""

from __future__ import annotations

import pytest

from components.connection_pooler import BOOTSTRAP_CONTAINER, RESOURCES
from components.database_cluster_config import BACKUP_SIDECAR_RESOURCES
from policies.operator_pods import cnpg_pooler_pod_spec
from policies.workload import check_resources


def objects_of(rendering, kind: str) -> list[dict]:
    return [obj for obj in rendering.kubernetes_objects() if obj["kind"] == kind]


def test_the_pooler_sizes_the_init_container_the_operator_adds_and_leaves_security_contexts_to_it(stack_rendering):
    for pooler in objects_of(stack_rendering, "Pooler"):
        spec = pooler["spec"]["template"]["spec"]
        assert spec["initContainers"] == [{"name": BOOTSTRAP_CONTAINER, "resources": RESOURCES}]
        # Dead configuration otherwise: CloudNativePG overwrites both (policies/operator_pods.py).
        assert "securityContext" not in spec and all("securityContext" not in c for c in spec["containers"])
        assert check_resources(cnpg_pooler_pod_spec(spec), {}, spec_path="spec.template.spec") == []


@pytest.mark.parametrize("stack,node_rule", [("staging", "ScheduleAnyway"), ("prod", "DoNotSchedule")])
def test_pooler_pods_spread_over_nodes_strictly_in_prod_and_over_zones(rendered, stack, node_rule):
    [pooler] = objects_of(rendered[stack], "Pooler")
    selector = {"matchLabels": {"cnpg.io/poolerName": pooler["metadata"]["name"]}}
    spread = pooler["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [(c["topologyKey"], c["whenUnsatisfiable"], c["labelSelector"]) for c in spread] == [
        ("kubernetes.io/hostname", node_rule, selector),
        ("topology.kubernetes.io/zone", "ScheduleAnyway", selector),
    ]


def test_the_database_spread_counts_only_its_instances(stack_rendering):
    for cluster in objects_of(stack_rendering, "Cluster"):
        [zone] = cluster["spec"]["topologySpreadConstraints"]
        assert zone["labelSelector"] == {"matchLabels": {"cnpg.io/cluster": cluster["metadata"]["name"], "cnpg.io/podRole": "instance"}}


def test_the_backup_sidecar_the_plugin_injects_is_sized_by_the_object_store(stack_rendering):
    stores = objects_of(stack_rendering, "ObjectStore")
    assert stores
    for store in stores:
        assert store["spec"]["instanceSidecarConfiguration"] == {"resources": BACKUP_SIDECAR_RESOURCES.model_dump()}
