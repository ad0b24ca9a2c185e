"""The e2e harness's own logic, without the toolchain: comparisons, stack files, CRDs, process cleanup."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import yaml

from e2e import compare, launchers, run, stacks
from e2e.processes import Processes, group_running, wait_until
from tools.preview import MASK

STACK_URN = "urn:pulumi:local::platform::pulumi:pulumi:Stack::platform-local"
DEPLOYMENT_URN = "urn:pulumi:local::platform::platform:app:AppService$kubernetes:apps/v1:Deployment::web"


def test_program_urns_drop_the_stack_and_default_providers_only():
    urns = [
        STACK_URN,
        "urn:pulumi:local::platform::pulumi:providers:random::default_4_21_4",
        "urn:pulumi:local::platform::pulumi:providers:kubernetes::cluster",
        DEPLOYMENT_URN,
    ]
    assert compare.program_urns(urns) == {urns[2], DEPLOYMENT_URN}


def test_rendered_secrets_are_masked_and_data_forms_compare_equal(tmp_path):
    rendered = tmp_path / "rendered" / "1-manifest"
    rendered.mkdir(parents=True)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}, "data": {"password": "cGxhaW4="}}
    (rendered / "v1-secret-n-s.yaml").write_text(yaml.safe_dump(secret))
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "secret_n_s.yaml").write_text(yaml.safe_dump({**secret, "data": None, "stringData": {"password": MASK}}))
    real_objects = compare.rendered_objects(tmp_path / "rendered")
    assert real_objects[("v1", "Secret", "n", "s")]["data"] == {"password": MASK}
    assert "cGxhaW4=" not in str(real_objects)
    assert compare.object_differences(real_objects, compare.offline_objects(offline)) == []


def test_object_differences_name_the_object_and_the_field():
    key = ("apps/v1", "Deployment", "platform", "web")
    real = {key: {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "a"}]}}}}}
    offline = {key: {"spec": {"replicas": 2.0, "template": {"spec": {"containers": [{"image": "b"}]}}}}}
    assert compare.object_differences(real, offline) == [
        "apps/v1/Deployment/platform/web: spec.template.spec.containers[0].image: real 'a', offline 'b'"
    ]
    extra = ("v1", "ConfigMap", "platform", "x")
    assert compare.object_differences({**real, extra: {}}, real) == ["v1/ConfigMap/platform/x: rendered by the real engine only"]


def event(policy=None, pre=None):
    return SimpleNamespace(policy_event=policy, resource_pre_event=pre)


def test_findings_and_actions_from_engine_events():
    policy = SimpleNamespace(policy_name="pss-restricted-run-as-non-root", resource_urn=DEPLOYMENT_URN, enforcement_level="Mandatory")
    events = [
        event(policy=policy),
        event(pre=SimpleNamespace(metadata=SimpleNamespace(op=SimpleNamespace(value="update"), urn=DEPLOYMENT_URN))),
        event(pre=SimpleNamespace(metadata=SimpleNamespace(op="same", urn=STACK_URN))),
    ]
    assert compare.real_findings(events) == {("pss-restricted-run-as-non-root", DEPLOYMENT_URN, "mandatory")}
    assert compare.real_actions(events) == {DEPLOYMENT_URN: "update"}
    offline = {"policyFindings": [{"policy": "pss-restricted-run-as-non-root", "urn": DEPLOYMENT_URN, "enforcement": "mandatory"}],
               "diff": {"changes": [{"urn": DEPLOYMENT_URN, "action": "update"}]}}  # fmt: skip
    assert compare.offline_findings(offline) == compare.real_findings(events)
    assert compare.offline_actions(offline) == compare.real_actions(events)


def test_e2e_stack_file_has_no_secure_values_and_takes_overrides():
    document, secret_keys = stacks.stack_file_without_secrets("prod", {"platform:kubernetes": {"context": "e2e"}, "platform:ingress": None})
    config = document["config"]
    assert {"platform:api-token", "platform:web-session-key"} <= set(secret_keys)
    assert "platform:kubeconfig" not in secret_keys  # the overridden `kubernetes` names no kubeconfig secret
    assert not any(key in config for key in secret_keys)
    assert "encryptionsalt" not in document
    assert config["platform:kubernetes"] == {"context": "e2e"}
    assert "platform:ingress" not in config


def test_common_overrides_send_the_bucket_api_to_moto_and_turn_add_ons_off():
    overrides = run.common_overrides("local", "http://127.0.0.1:1234")
    assert overrides["platform:backups"]["adminEndpoint"] == "http://127.0.0.1:1234"
    assert overrides["platform:backups"]["endpoint"] == "http://minio.minio.svc:9000"  # what the pods use is kept
    assert overrides["platform:addons"] and not any(overrides["platform:addons"].values())
    assert "platform:addons" not in run.common_overrides("prod", "http://127.0.0.1:1234")


def test_crds_rebuilt_from_tools_crds_have_one_storage_version_each():
    crds = run.crd_objects()
    assert {crd["metadata"]["name"] for crd in crds} >= {"clusters.postgresql.cnpg.io", "httproutes.gateway.networking.k8s.io"}
    for crd in crds:
        versions = crd["spec"]["versions"]
        assert sum(v["storage"] for v in versions) == 1, crd["metadata"]["name"]
        assert all(v["schema"]["openAPIV3Schema"].get("type") == "object" for v in versions)


def test_failed_checks_lists_false_values_and_zero_admitted_pods():
    report = {"stacks": {"local": {"upOk": True, "podsAdmitted": 0, "destroyRefusedByProtect": None, "seconds": 1.0},
                         "prod": {"upOk": False, "podsAdmitted": 6, "notes": []}}}  # fmt: skip
    assert run.failed_checks(report) == ["local.podsAdmitted", "prod.upOk"]


def test_launchers_run_the_venv_python_with_the_module(tmp_path):
    launchers.write(tmp_path)
    pack = (tmp_path / launchers.POLICY_PACK_LAUNCHER).read_text()
    assert f"cd {launchers.POLICY_PACK_DIR}" in pack and f'{sys.executable} -u -m pulumi.policy "$1" .' in pack
    dynamic = (tmp_path / "pulumi-resource-pulumi-python").read_text()
    assert '-m pulumi.dynamic "$@"' in dynamic
    assert all(os.access(path, os.X_OK) for path in tmp_path.iterdir())


def test_processes_leave_no_child_behind(tmp_path):
    with Processes(tmp_path) as processes:
        # A parent that starts a child in its own process group: stopping the parent must stop both.
        parent, _ = processes.start("sleeper", ["sh", "-c", "sleep 300 & echo $! > child.pid.tmp; mv child.pid.tmp child.pid; wait"], cwd=tmp_path)
        # Under load the shell may take seconds to start: wait for the whole pid file (written, then renamed).
        wait_until("the child's pid", (tmp_path / "child.pid").exists, timeout=120, process=parent)
        child = int((tmp_path / "child.pid").read_text())
    # Leaving the context waited until nothing of the group ran any more: no sleep or retry needed here.
    assert parent.poll() is not None
    assert not alive(child)
    assert group_running(parent.pid) == []


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that is not us counts as gone)."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_secret_checksum_is_not_compared_but_the_rest_of_the_template_is():
    def deployment(checksum, image):
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "p"},
                "spec": {"template": {"metadata": {"annotations": {"checksum/secret": checksum}},
                                      "spec": {"containers": [{"image": image}]}}}}  # fmt: skip

    key = ("apps/v1", "Deployment", "p", "web")
    same = compare.object_differences({key: compare.normalize(deployment("aa", "x"))}, {key: compare.normalize(deployment("bb", "x"))})
    assert same == []
    different = compare.object_differences({key: compare.normalize(deployment("aa", "x"))}, {key: compare.normalize(deployment("bb", "y"))})
    assert different == ["apps/v1/Deployment/p/web: spec.template.spec.containers[0].image: real 'x', offline 'y'"]


def test_config_value_follows_a_pulumi_config_path():
    config = {"platform:databases": [{"name": "orders", "storage": {"size": "1Gi"}}]}
    assert run.config_value(config, "databases[0].storage.size") == "1Gi"
    assert run.config_value(config, "databases[0].storage.storageClass") is None
    assert run.config_value(config, "services[0].image") is None


def test_a_secret_value_found_as_given_or_base64_encoded_is_a_leak(tmp_path):
    folder = tmp_path / "no-cluster" / "local"
    (folder / "rendered").mkdir(parents=True)
    (tmp_path / "logs").mkdir()
    e2e = stacks.E2EStack("local", folder / "project", {}, tmp_path, secret_values={"platform:api-token": "e2e-token-value"})
    log = run.StackRun("local", tmp_path / "logs" / "local.log")
    (folder / "rendered" / "secret.yaml").write_text("data:\n  API_TOKEN: [secret]\n")
    assert run.secrets_stay_encrypted(e2e, folder, log) is True
    (folder / "rendered" / "secret.yaml").write_text("data:\n  API_TOKEN: ZTJlLXRva2VuLXZhbHVl\n")  # base64 of the value
    assert run.secrets_stay_encrypted(e2e, folder, log) is False
    (folder / "rendered" / "secret.yaml").write_text("")
    (tmp_path / "logs" / "pulumi.log").write_text("token=e2e-token-value")
    assert run.secrets_stay_encrypted(e2e, folder, log) is False


def test_a_secret_the_overridden_config_no_longer_names_is_not_set():
    """Part (a) renders prod to a folder: its kubeconfig secret names nothing then, and the program refuses an
    encrypted value nothing uses."""
    _, kept = stacks.stack_file_without_secrets("prod", {"platform:kubernetes": {"renderDirectory": "out"}})
    _, all_secrets = stacks.stack_file_without_secrets("prod", {})
    assert "platform:kubeconfig" in all_secrets
    assert sorted(kept) == sorted(key for key in all_secrets if key != "platform:kubeconfig")
