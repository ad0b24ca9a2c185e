"""The pieces of e2e/operators.py that need no control plane: pins, PKI, webhook registration, storage, the
readiness checks on `pulumi up`'s state, the operator-pod checks and the stand-in status writer."""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes

from components import readiness
from components.database_cluster import BARMAN_CLOUD_PLUGIN_VERSION
from components.database_cluster_config import CNPG_OPERATOR_VERSION
from e2e import operators, run

E2E_DIR = Path(run.__file__).resolve().parent


def test_the_operators_the_e2e_builds_are_the_versions_the_components_deploy():
    pins = run.pins()
    assert pins["CNPG_VERSION"] == f"v{CNPG_OPERATOR_VERSION}"
    assert pins["BARMAN_CLOUD_PLUGIN_VERSION"] == f"v{BARMAN_CLOUD_PLUGIN_VERSION}"


def test_the_toolchain_builds_each_operator_keyed_by_its_own_pin():
    script = (E2E_DIR / "toolchain.sh").read_text()
    steps = dict(re.findall(r'^\s*"([\w.-]+)\|([^|"]*)\|\w+"', script, re.MULTILINE))
    assert steps[operators.CNPG_BINARY] == "$CNPG_VERSION"
    assert steps[operators.BARMAN_CLOUD_BINARY] == "$BARMAN_CLOUD_PLUGIN_VERSION"
    # The operator's webhook server must listen on 127.0.0.1 like every server the e2e starts.
    assert 'Host:    "127.0.0.1",' in script


def test_the_webhook_certificate_is_for_127_0_0_1_and_signed_by_the_ca(tmp_path):
    ca_pem = operators.webhook_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(ca_pem)
    serving = x509.load_pem_x509_certificate((tmp_path / "apiserver.crt").read_bytes())
    ca.public_key().verify(serving.signature, serving.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (tmp_path / "apiserver.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")


MANIFESTS = """
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: validating-webhook-configuration
webhooks:
- admissionReviewVersions: [v1]
  clientConfig:
    service: {name: webhook-service, namespace: system, path: /validate-postgresql-cnpg-io-v1-cluster}
  failurePolicy: Fail
  name: vcluster.cnpg.io
  rules: [{apiGroups: [postgresql.cnpg.io], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [clusters]}]
  sideEffects: None
"""


def test_webhooks_are_registered_by_url_on_127_0_0_1_with_the_harness_ca():
    [configuration] = operators.webhook_configurations(MANIFESTS, 9555, b"CA PEM")
    assert configuration["metadata"] == {"name": "cnpg-validating-webhook-configuration"}
    [webhook] = configuration["webhooks"]
    assert webhook["clientConfig"] == {"url": "https://127.0.0.1:9555/validate-postgresql-cnpg-io-v1-cluster", "caBundle": "Q0EgUEVN"}
    assert webhook["failurePolicy"] == "Fail" and webhook["rules"][0]["resources"] == ["clusters"]


def test_storage_classes_and_enough_volumes_for_every_instance():
    clusters = [
        {"spec": {"instances": 3, "storage": {"storageClass": "gp3"}, "walStorage": {"storageClass": "gp3"}}},
        {"spec": {"storage": {"size": "1Gi"}}},  # no class: the default one
    ]
    objects = operators.storage_objects("prod", clusters)
    classes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "StorageClass"}
    volumes = [o for o in objects if o["kind"] == "PersistentVolume"]
    assert set(classes) == {"gp3", operators.DEFAULT_STORAGE_CLASS}
    assert classes[operators.DEFAULT_STORAGE_CLASS]["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert classes["gp3"]["metadata"]["annotations"] == {}
    assert sorted(v["spec"]["storageClassName"] for v in volumes) == ["e2e-default"] + ["gp3"] * 6
    assert len({v["metadata"]["name"] for v in volumes}) == 7


def awaited_object(kind: str, spec: dict, status: dict | None, api_version: str = "postgresql.cnpg.io/v1") -> dict:
    obj = {
        "apiVersion": api_version, "kind": kind, "spec": spec,
        "metadata": {"name": kind.lower(), "annotations": readiness.annotations(api_version, kind, spec)},
    }  # fmt: skip
    if status is not None:
        obj["status"] = status
    return obj


def state(*objects: dict) -> list[dict]:
    return [{"type": f"kubernetes:{o['apiVersion']}:{o['kind']}", "outputs": o} for o in objects]


def test_the_state_shows_pulumi_up_waited_only_when_every_rule_holds():
    ready_cluster = awaited_object("Cluster", {}, {"conditions": [{"type": "Ready", "status": "True"}]})
    pooler = awaited_object("Pooler", {"instances": 3.0}, {"phase": "active", "instances": 3.0})
    ok, notes = operators.custom_resources_awaited(state(ready_cluster, pooler), {"Cluster", "Pooler"})
    assert ok, notes

    stored_only = awaited_object("Pooler", {"instances": 3}, None)  # what the provider returns without waiting
    short = awaited_object("Pooler", {"instances": 3}, {"phase": "active", "instances": 2})
    not_ready = awaited_object("Cluster", {}, {"conditions": [{"type": "Ready", "status": "False"}]})
    for resources in ([ready_cluster, stored_only], [ready_cluster, short], [not_ready, pooler]):
        ok, notes = operators.custom_resources_awaited(state(*resources), {"Cluster", "Pooler"})
        assert not ok and any("recorded before its rules held" in note for note in notes)
    ok, notes = operators.custom_resources_awaited(state(ready_cluster), {"Cluster", "Pooler"})
    assert not ok and notes[-1] == "no awaited object of ['Pooler'] in the state"


def pod(name: str, labels: dict, phase: str = "Running", ready: bool = True, init: tuple = (), annotations: dict | None = None) -> dict:
    return {
        "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
        "spec": {"initContainers": [{"name": n} for n in init]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


class FakeKube:
    def __init__(self, objects: dict[str, list[dict]]):
        self.objects = objects
        self.patches: list[tuple[str, dict]] = []

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        return self.objects.get(kind, [])

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        return next((o for o in self.objects.get(kind, []) if o["metadata"]["name"] == name), None)

    def path(self, api_version, kind, namespace=None, name=None) -> str:
        return f"/{kind}/{name}"

    def request(self, method, path, body=None, content_type="", raw=False):
        self.patches.append((path, body))


CLUSTER = {"metadata": {"name": "orders"}, "spec": {"plugins": [{"name": operators.PLUGIN_NAME}]}}
POOLER = {"metadata": {"name": "orders-pooler-rw"}, "spec": {"instances": 2}}
INITDB = pod("orders-1-initdb-x", {"cnpg.io/cluster": "orders", "cnpg.io/jobRole": "initdb"}, phase="Succeeded", ready=False)
POOLER_PODS = [pod(f"orders-pooler-rw-{i}", {"cnpg.io/poolerName": "orders-pooler-rw"}) for i in range(2)]


def primary(**kwargs) -> dict:
    # No cnpg.io/instanceRole label: the operator sets it only after reading the instance's status.
    return pod("orders-1", {"cnpg.io/cluster": "orders", "cnpg.io/podRole": "instance"}, **kwargs)


LIVE_CLUSTER = {"metadata": {"name": "orders"}, "status": {"targetPrimary": "orders-1"}}


def test_operator_pods_pass_with_the_bootstrap_pod_the_primary_with_its_sidecar_and_the_pooler_pods():
    kube = FakeKube({"Pod": [INITDB, primary(init=("bootstrap-controller", "plugin-barman-cloud")), *POOLER_PODS], "Cluster": [LIVE_CLUSTER]})
    result = operators.operator_pods(kube, "platform", [CLUSTER], [POOLER])
    assert result.ok, result.notes
    assert result.defaulted == []


def test_operator_pods_fail_without_the_sidecar_with_too_few_pooler_pods_or_on_a_refused_creation():
    missing_sidecar = FakeKube({"Pod": [INITDB, primary(init=("bootstrap-controller",)), *POOLER_PODS], "Cluster": [LIVE_CLUSTER]})
    assert "has no plugin sidecar" in " ".join(operators.operator_pods(missing_sidecar, "p", [CLUSTER], [POOLER]).notes)
    one_pooler_pod = FakeKube({"Pod": [INITDB, primary(init=("plugin-barman-cloud",)), POOLER_PODS[0]], "Cluster": [LIVE_CLUSTER]})
    assert not operators.operator_pods(one_pooler_pod, "p", [CLUSTER], [POOLER]).ok
    refused = FakeKube({
        "Pod": [INITDB, primary(init=("plugin-barman-cloud",)), *POOLER_PODS], "Cluster": [LIVE_CLUSTER],
        "Event": [{"reason": "FailedCreate", "involvedObject": {"kind": "ReplicaSet", "name": "rs"}, "message": "violates PodSecurity"}],
    })  # fmt: skip
    result = operators.operator_pods(refused, "p", [CLUSTER], [POOLER])
    assert not result.ok and result.notes[-1] == "ReplicaSet rs: violates PodSecurity"


def test_containers_the_limit_range_had_to_size_are_listed():
    filled = {operators.LIMIT_RANGER_ANNOTATION: "LimitRanger plugin set: cpu, memory limit for init container bootstrap-controller"}
    kube = FakeKube({"Pod": [INITDB, primary(init=("plugin-barman-cloud",), annotations=filled), *POOLER_PODS], "Cluster": [LIVE_CLUSTER]})
    result = operators.operator_pods(kube, "p", [CLUSTER], [POOLER])
    assert result.ok and result.defaulted == [f"orders-1: {filled[operators.LIMIT_RANGER_ANNOTATION]}"]


def test_the_cluster_stand_in_writes_ready_only_once_the_primary_is_ready():
    cluster = awaited_object("Cluster", {}, {"phase": "Setting up primary", "targetPrimary": "orders-1", "conditions": [{"type": "Ready", "status": "False"}]})
    cluster["metadata"].update(namespace="platform", name="orders")
    not_yet = FakeKube({"Cluster": [cluster], "Pod": [INITDB, primary(ready=False)]})
    stand_ins = operators.StandIns(not_yet, "platform", [operators.CLUSTER_STAND_IN])
    stand_ins._write(operators.CLUSTER_STAND_IN)
    assert not_yet.patches == [] and stand_ins.written == {}

    kube = FakeKube({"Cluster": [cluster], "Pod": [INITDB, primary()]})
    stand_ins = operators.StandIns(kube, "platform", [operators.CLUSTER_STAND_IN])
    stand_ins._write(operators.CLUSTER_STAND_IN)
    [(path, body)] = kube.patches
    assert path == "/Cluster/orders/status"
    assert body["status"]["phase"] == "Cluster in healthy state"
    assert [(c["type"], c["status"], c["reason"]) for c in body["status"]["conditions"]] == [("Ready", "True", "ClusterIsReady")]
    assert list(stand_ins.written) == ["Cluster/orders"]


def test_stand_ins_leave_objects_alone_that_await_nothing_or_are_ready_already():
    not_awaited = {"metadata": {"name": "x", "annotations": {}}, "status": {}}
    ready = awaited_object("Certificate", {}, {"conditions": [{"type": "Ready", "status": "True"}]}, "cert-manager.io/v1")
    kube = FakeKube({"Certificate": [not_awaited, ready]})
    stand_in = next(s for s in operators.CONDITION_STAND_INS if s.kind == "Certificate")
    operators.StandIns(kube, "platform", [stand_in])._write(stand_in)
    assert kube.patches == []


def test_the_stand_in_thread_stops():
    stand_ins = operators.StandIns(FakeKube({}), "platform", [operators.CLUSTER_STAND_IN])
    stand_ins.start()
    stand_ins.stop()
    assert not stand_ins.is_alive() and threading.active_count() >= 1


def test_the_invalid_cluster_keeps_the_schema_and_breaks_a_webhook_rule():
    from tools import schemas

    cluster = {
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "orders", "namespace": "platform"},
        "spec": {"instances": 3, "storage": {"size": "1Gi"}, "postgresql": {"parameters": {"max_connections": "100"}}},
    }  # fmt: skip
    invalid = operators.invalid_cluster(cluster)
    assert invalid["metadata"] == {"name": "orders-invalid", "namespace": "platform"}
    assert invalid["spec"]["postgresql"]["parameters"] == {"max_connections": "100", "wal_level": "minimal"}
    assert cluster["spec"]["postgresql"]["parameters"] == {"max_connections": "100"}  # the original is untouched
    assert schemas.validate(invalid) == []
    message = 'admission webhook "vcluster.cnpg.io" denied the request: spec.postgresql.parameters.wal_level: Invalid value: "minimal"'
    assert operators.refused_by_webhook(message)
    assert not operators.refused_by_webhook('Cluster.postgresql.cnpg.io "x" is invalid: spec.instances: Invalid value')


def test_crds_match_compares_the_offline_schemas_with_the_operator_module_files(tmp_path):
    crd_dir, bin_dir = tmp_path / "crds", tmp_path / "bin"
    (crd_dir / "postgresql.cnpg.io").mkdir(parents=True)
    (bin_dir / "crds" / "postgresql.cnpg.io").mkdir(parents=True)
    (bin_dir / "crds" / "postgresql.cnpg.io" / "poolers.yaml").write_text("kind: CustomResourceDefinition\n")
    import hashlib

    same = hashlib.sha256(b"kind: CustomResourceDefinition\n").hexdigest()
    (crd_dir / "postgresql.cnpg.io" / "poolers.json").write_text(json.dumps({"plural": "poolers", "source_sha256": same}))
    assert operators.crds_match(bin_dir, crd_dir) == []
    (crd_dir / "postgresql.cnpg.io" / "poolers.json").write_text(json.dumps({"plural": "poolers", "source_sha256": "0" * 64}))
    assert operators.crds_match(bin_dir, crd_dir) == ["postgresql.cnpg.io/poolers: tools/crds was extracted from another file than the operator's"]


def test_rebuilt_crds_keep_the_status_subresource_the_operators_write_to():
    crds = {crd["spec"]["names"]["kind"]: crd for crd in run.crd_objects()}
    [version] = crds["Cluster"]["spec"]["versions"]
    assert version["subresources"]["status"] == {}


def test_the_pooler_deployment_is_compared_with_the_pod_the_pack_judges():
    from policies.operator_pods import cnpg_pooler_pod_spec

    sized = {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}}
    template = {"containers": [{"name": "pgbouncer", "image": "pgbouncer:1", "resources": sized}],
                "initContainers": [{"name": "bootstrap-controller", "resources": sized}]}  # fmt: skip
    pooler = {"metadata": {"name": "orders-pooler-rw"}, "spec": {"template": {"spec": template}}}
    as_modelled = {"metadata": {"name": "orders-pooler-rw"}, "spec": {"template": {"spec": cnpg_pooler_pod_spec(template)}}}
    assert operators.pooler_model_differences(FakeKube({"Deployment": [as_modelled]}), "p", pooler) == []

    other = cnpg_pooler_pod_spec(template)
    other["securityContext"] = {"runAsNonRoot": True}
    other["initContainers"][0]["resources"] = {"limits": {"cpu": "1"}}
    real = {"metadata": {"name": "orders-pooler-rw"}, "spec": {"template": {"spec": other}}}
    differences = operators.pooler_model_differences(FakeKube({"Deployment": [real]}), "p", pooler)
    assert [d.split(":")[0] for d in differences] == ["pod securityContext", "bootstrap-controller.resources"]
    assert operators.pooler_model_differences(FakeKube({}), "p", pooler) == ["no Deployment orders-pooler-rw"]


def test_pods_admitted_counts_each_deployments_running_pods_not_the_operators():
    from types import SimpleNamespace

    def deployment(name: str, replicas: int) -> dict:
        return {"metadata": {"name": name}, "spec": {"replicas": replicas}, "status": {"readyReplicas": replicas}}

    def rs_pod(name: str, replica_set: str, phase: str = "Running") -> dict:
        return {"metadata": {"name": name, "ownerReferences": [{"kind": "ReplicaSet", "name": replica_set}]}, "status": {"phase": phase}}

    instance = {"metadata": {"name": "orders-1", "ownerReferences": [{"kind": "Cluster", "name": "orders"}]}, "status": {"phase": "Running"}}
    pods = [rs_pod("web-5d9f-a", "web-5d9f"), rs_pod("api-7c4b-a", "api-7c4b"), rs_pod("api-7c4b-b", "api-7c4b"), instance]
    kube = FakeKube({"Deployment": [deployment("web", 1), deployment("api", 2)], "Pod": pods})
    plane, notes = SimpleNamespace(kube=kube), SimpleNamespace(note=lambda text: None)
    assert run.pods_admitted(plane, "platform", notes) == 3

    kube.objects["Pod"] = pods[:2] + [rs_pod("api-7c4b-b", "api-7c4b", phase="Pending")]
    try:
        run.pods_admitted(plane, "platform", notes)
    except AssertionError as error:
        assert str(error) == "pods running per Deployment in platform: {'web': 1, 'api': 1}, asked for {'web': 1, 'api': 2}"
    else:
        raise AssertionError("a Deployment short of a running pod passed")
