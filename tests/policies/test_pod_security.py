"""Pod Security Standards policies, through the analyzer (the engine's path): one table row per edge of a rule.

Each row starts from a fully hardened Deployment, changes its pod template, and says whether the named policy
must report it (and, when it must, a fragment of the field path the message has to name).
"""

from __future__ import annotations

import pytest
from pulumi.output import Unknown

from policies import pod_security
from tests.policies.conftest import DEL, SET, apply, hardened_deployment, policies_hit, run, template
from tools.analyzer import analyze
from tools.engine import RecordedResource, wrap_secret

WEB = "spec.containers[0]"
INIT = "spec.initContainers[0]"
DEBUG_CONTAINER = {"name": "debug", "image": "busybox:1.36", "securityContext": {"privileged": True}}
ALL_CONTAINERS = (WEB, INIT)


def on_all_containers(field: str, value) -> list:
    return [(SET, f"{c}.securityContext.{field}", value) for c in ALL_CONTAINERS]


# (policy, case id, changes to the pod template, must it be reported?, path fragment the message names)
CASES = [
    # --- Baseline ---
    ("pss-baseline-host-process", "pod-level", [(SET, "spec.securityContext.windowsOptions", {"hostProcess": True})], True, "spec.template.spec.securityContext.windowsOptions.hostProcess"),
    ("pss-baseline-host-process", "init container", [(SET, f"{INIT}.securityContext.windowsOptions", {"hostProcess": True})], True, "spec.template.spec.initContainers[0]"),
    ("pss-baseline-host-process", "false is fine", [(SET, "spec.securityContext.windowsOptions", {"hostProcess": False})], False, None),
    ("pss-baseline-host-namespaces", "hostNetwork", [(SET, "spec.hostNetwork", True)], True, "spec.template.spec.hostNetwork"),
    ("pss-baseline-host-namespaces", "hostPID", [(SET, "spec.hostPID", True)], True, "spec.template.spec.hostPID"),
    ("pss-baseline-host-namespaces", "hostIPC", [(SET, "spec.hostIPC", True)], True, "spec.template.spec.hostIPC"),
    ("pss-baseline-host-namespaces", "explicit false", [(SET, "spec.hostNetwork", False), (SET, "spec.hostPID", False)], False, None),
    ("pss-baseline-privileged", "container", [(SET, f"{WEB}.securityContext.privileged", True)], True, "spec.template.spec.containers[0]"),
    ("pss-baseline-privileged", "ephemeral container", [(SET, "spec.ephemeralContainers", [DEBUG_CONTAINER])], True, "spec.template.spec.ephemeralContainers[0]"),
    ("pss-baseline-privileged", "explicit false", [(SET, f"{WEB}.securityContext.privileged", False)], False, None),
    ("pss-baseline-capabilities", "SYS_ADMIN", [(SET, f"{WEB}.securityContext.capabilities.add", ["SYS_ADMIN"])], True, "securityContext.capabilities.add"),
    ("pss-baseline-capabilities", "NET_RAW is not default", [(SET, f"{INIT}.securityContext.capabilities.add", ["NET_RAW"])], True, "initContainers[0]"),
    ("pss-baseline-capabilities", "default set", [(SET, f"{WEB}.securityContext.capabilities.add", ["CHOWN", "SETUID"])], False, None),
    ("pss-baseline-host-path-volumes", "hostPath", [(SET, "spec.volumes[0]", {"name": "tmp", "hostPath": {"path": "/var/run"}})], True, "spec.template.spec.volumes[0].hostPath"),
    ("pss-baseline-host-path-volumes", "core volumes", [(SET, "spec.volumes[0]", {"name": "tmp", "persistentVolumeClaim": {"claimName": "x"}})], False, None),
    ("pss-baseline-host-ports", "hostPort", [(SET, f"{WEB}.ports[0].hostPort", 8080)], True, "containers[0] (container \"web\").ports[0].hostPort is 8080"),
    ("pss-baseline-host-ports", "hostPort 0", [(SET, f"{WEB}.ports[0].hostPort", 0)], False, None),
    ("pss-baseline-host-probes-lifecycle", "httpGet probe host", [(SET, f"{WEB}.livenessProbe.httpGet.host", "10.0.0.1")], True, "livenessProbe.httpGet.host"),
    ("pss-baseline-host-probes-lifecycle", "tcpSocket probe host", [(SET, f"{WEB}.readinessProbe.tcpSocket.host", "db")], True, "readinessProbe.tcpSocket.host"),
    ("pss-baseline-host-probes-lifecycle", "lifecycle hook host", [(SET, f"{INIT}.lifecycle.preStop.httpGet", {"host": "x", "port": 80})], True, "initContainers[0] (container \"migrate\").lifecycle.preStop.httpGet.host"),
    ("pss-baseline-host-probes-lifecycle", "empty host", [(SET, f"{WEB}.livenessProbe.httpGet.host", "")], False, None),
    ("pss-baseline-apparmor", "pod field Unconfined", [(SET, "spec.securityContext.appArmorProfile", {"type": "Unconfined"})], True, "spec.template.spec.securityContext.appArmorProfile.type"),
    ("pss-baseline-apparmor", "container field Unconfined", [(SET, f"{WEB}.securityContext.appArmorProfile", {"type": "Unconfined"})], True, "containers[0]"),
    ("pss-baseline-apparmor", "annotation unconfined", [(SET, ("metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/web"), "unconfined")], True, "spec.template.metadata.annotations"),
    ("pss-baseline-apparmor", "Localhost field", [(SET, f"{WEB}.securityContext.appArmorProfile", {"type": "Localhost", "localhostProfile": "k8s-web"})], False, None),
    ("pss-baseline-apparmor", "localhost annotation", [(SET, ("metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/web"), "localhost/k8s-web")], False, None),
    ("pss-baseline-selinux", "spc_t type", [(SET, "spec.securityContext.seLinuxOptions", {"type": "spc_t"})], True, "spec.template.spec.securityContext.seLinuxOptions.type"),
    ("pss-baseline-selinux", "custom user", [(SET, f"{WEB}.securityContext.seLinuxOptions", {"user": "system_u"})], True, "seLinuxOptions.user"),
    ("pss-baseline-selinux", "custom role", [(SET, f"{INIT}.securityContext.seLinuxOptions", {"role": "sysadm_r"})], True, "seLinuxOptions.role"),
    ("pss-baseline-selinux", "container_engine_t and a level", [(SET, "spec.securityContext.seLinuxOptions", {"type": "container_engine_t", "level": "s0:c1,c2"})], False, None),
    ("pss-baseline-proc-mount", "Unmasked", [(SET, f"{WEB}.securityContext.procMount", "Unmasked")], True, "securityContext.procMount"),
    ("pss-baseline-proc-mount", "Default", [(SET, f"{WEB}.securityContext.procMount", "Default")], False, None),
    ("pss-baseline-proc-mount", "Unmasked in a user namespace", [(SET, "spec.hostUsers", False), (SET, f"{WEB}.securityContext.procMount", "Unmasked")], False, None),
    ("pss-baseline-seccomp", "pod Unconfined", [(SET, "spec.securityContext.seccompProfile.type", "Unconfined")], True, "spec.template.spec.securityContext.seccompProfile.type"),
    ("pss-baseline-seccomp", "container Unconfined", [(SET, f"{INIT}.securityContext.seccompProfile", {"type": "Unconfined"})], True, "initContainers[0]"),
    ("pss-baseline-seccomp", "a profile without a type", [(SET, f"{WEB}.securityContext.seccompProfile", {})], True, "containers[0] (container \"web\").securityContext.seccompProfile.type is None"),
    ("pss-baseline-seccomp", "Localhost", [(SET, "spec.securityContext.seccompProfile", {"type": "Localhost", "localhostProfile": "p.json"})], False, None),
    ("pss-baseline-sysctls", "unsafe sysctl", [(SET, "spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "65536"}])], True, "spec.template.spec.securityContext.sysctls[0].name"),
    ("pss-baseline-sysctls", "safe sysctls", [(SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}, {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}])], False, None),
    # --- Restricted ---
    ("pss-restricted-volume-types", "nfs", [(SET, "spec.volumes[1]", {"name": "share", "nfs": {"server": "nfs", "path": "/"}})], True, "spec.template.spec.volumes[1] (volume \"share\") uses nfs"),
    ("pss-restricted-volume-types", "no source is the API server's default emptyDir", [(SET, "spec.volumes[1]", {"name": "scratch"})], False, None),
    ("pss-restricted-volume-types", "hostPath", [(SET, "spec.volumes[0]", {"name": "tmp", "hostPath": {"path": "/"}})], True, "volumes[0]"),
    ("pss-restricted-volume-types", "every allowed source", [(SET, "spec.volumes", [
        {"name": "a", "configMap": {"name": "c"}}, {"name": "b", "csi": {"driver": "d"}}, {"name": "c", "downwardAPI": {}},
        {"name": "d", "emptyDir": {}}, {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        {"name": "f", "image": {"reference": "ghcr.io/example/data:1"}}, {"name": "g", "persistentVolumeClaim": {"claimName": "p"}},
        {"name": "h", "projected": {"sources": []}}, {"name": "i", "secret": {"secretName": "s"}}])], False, None),
    ("pss-restricted-privilege-escalation", "not set", [(DEL, f"{WEB}.securityContext.allowPrivilegeEscalation", None)], True, "containers[0] (container \"web\").securityContext.allowPrivilegeEscalation is not set"),
    ("pss-restricted-privilege-escalation", "true", [(SET, f"{INIT}.securityContext.allowPrivilegeEscalation", True)], True, "initContainers[0]"),
    ("pss-restricted-privilege-escalation", "windows pods are exempt", [(SET, "spec.os", {"name": "windows"}), (DEL, f"{WEB}.securityContext.allowPrivilegeEscalation", None)], False, None),
    ("pss-restricted-run-as-non-root", "pod false", [(SET, "spec.securityContext.runAsNonRoot", False)], True, "spec.template.spec.securityContext.runAsNonRoot is false"),
    ("pss-restricted-run-as-non-root", "container false overrides pod true", [(SET, f"{WEB}.securityContext.runAsNonRoot", False)], True, "containers[0]"),
    ("pss-restricted-run-as-non-root", "nobody sets it", [(DEL, "spec.securityContext.runAsNonRoot", None)], True, "initContainers[0]"),
    ("pss-restricted-run-as-non-root", "every container sets it", [(DEL, "spec.securityContext.runAsNonRoot", None), *on_all_containers("runAsNonRoot", True)], False, None),
    ("pss-restricted-run-as-non-root", "user namespace", [(DEL, "spec.securityContext.runAsNonRoot", None), (SET, "spec.hostUsers", False)], False, None),
    ("pss-restricted-run-as-user", "pod uid 0", [(SET, "spec.securityContext.runAsUser", 0)], True, "spec.template.spec.securityContext.runAsUser is 0"),
    ("pss-restricted-run-as-user", "container uid 0", [(SET, f"{INIT}.securityContext.runAsUser", 0)], True, "initContainers[0]"),
    ("pss-restricted-run-as-user", "uid not set", [(DEL, "spec.securityContext.runAsUser", None)], False, None),
    ("pss-restricted-run-as-user", "uid 0 in a user namespace", [(SET, "spec.securityContext.runAsUser", 0), (SET, "spec.hostUsers", False)], False, None),
    ("pss-restricted-seccomp", "nobody sets it", [(DEL, "spec.securityContext.seccompProfile", None)], True, "containers[0] (container \"web\").securityContext.seccompProfile is not set"),
    ("pss-restricted-seccomp", "container Unconfined under a good pod", [(SET, f"{WEB}.securityContext.seccompProfile", {"type": "Unconfined"})], True, "containers[0]"),
    ("pss-restricted-seccomp", "each container sets it", [(DEL, "spec.securityContext.seccompProfile", None), *on_all_containers("seccompProfile", {"type": "RuntimeDefault"})], False, None),
    ("pss-restricted-seccomp", "windows pods are exempt", [(DEL, "spec.securityContext.seccompProfile", None), (SET, "spec.os.name", "windows")], False, None),
    ("pss-restricted-capabilities", "no drop", [(DEL, f"{WEB}.securityContext.capabilities", None)], True, "containers[0] (container \"web\").securityContext.capabilities.drop"),
    ("pss-restricted-capabilities", "drop without ALL", [(SET, f"{INIT}.securityContext.capabilities.drop", ["NET_RAW"])], True, "initContainers[0]"),
    ("pss-restricted-capabilities", "adds CHOWN", [(SET, f"{WEB}.securityContext.capabilities.add", ["CHOWN"])], True, "capabilities.add has CHOWN"),
    ("pss-restricted-capabilities", "adds NET_BIND_SERVICE", [(SET, f"{WEB}.securityContext.capabilities.add", ["NET_BIND_SERVICE"])], False, None),
    ("pss-restricted-capabilities", "windows pods are exempt", [(SET, "spec.os.name", "windows"), (DEL, f"{WEB}.securityContext.capabilities", None)], False, None),
    ("pss-restricted-proc-mount", "Unmasked even in a user namespace", [(SET, "spec.hostUsers", False), (SET, f"{WEB}.securityContext.procMount", "Unmasked")], True, "securityContext.procMount is 'Unmasked'"),
    ("pss-restricted-proc-mount", "Default", [(SET, f"{INIT}.securityContext.procMount", "Default")], False, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "changes", "violates", "path"),
    [pytest.param(policy, changes, violates, path, id=f"{policy}: {case}") for policy, case, changes, violates, path in CASES],
)
def test_rule(policy, changes, violates, path):
    findings = run([apply(changes, hardened_deployment(), root=template)])
    messages = [finding.message for finding in findings if finding.policy == policy]
    assert bool(messages) == violates, findings
    if violates:
        assert any(path in message for message in messages), messages
        assert all(finding.enforcement == "mandatory" for finding in findings)


def test_every_rule_has_a_passing_and_a_failing_case():
    covered = {(policy, violates) for policy, _, _, violates, _ in CASES}
    for policy in pod_security.BASELINE_POLICIES + pod_security.RESTRICTED_POLICIES:
        assert (policy.name, True) in covered and (policy.name, False) in covered, policy.name


def test_the_hardened_deployment_passes_every_policy_of_the_pack():
    assert run([hardened_deployment()]) == []


PRIVILEGED_POD_SPEC = {"containers": [{"name": "app", "image": "app:1", "securityContext": {"privileged": True}}]}


@pytest.mark.parametrize(
    ("api_version", "kind", "wrap", "path"),
    [
        ("v1", "Pod", lambda spec: {"spec": spec}, "spec.containers[0]"),
        ("v1", "PodTemplate", lambda spec: {"template": {"spec": spec}}, "template.spec.containers[0]"),
        ("v1", "ReplicationController", lambda spec: {"spec": {"template": {"spec": spec}}}, "spec.template.spec.containers[0]"),
        ("apps/v1", "Deployment", lambda spec: {"spec": {"template": {"spec": spec}}}, "spec.template.spec.containers[0]"),
        ("apps/v1", "StatefulSet", lambda spec: {"spec": {"template": {"spec": spec}}}, "spec.template.spec.containers[0]"),
        ("apps/v1", "DaemonSet", lambda spec: {"spec": {"template": {"spec": spec}}}, "spec.template.spec.containers[0]"),
        ("apps/v1", "ReplicaSet", lambda spec: {"spec": {"template": {"spec": spec}}}, "spec.template.spec.containers[0]"),
        ("batch/v1", "Job", lambda spec: {"spec": {"template": {"spec": spec}}}, "spec.template.spec.containers[0]"),
        ("batch/v1", "CronJob", lambda spec: {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}, "spec.jobTemplate.spec.template.spec.containers[0]"),
    ],
)
def test_every_pod_bearing_kind_is_judged_through_its_pod_template(api_version, kind, wrap, path):
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "shop"}, **wrap(PRIVILEGED_POD_SPEC)}
    messages = [f.message for f in run([obj], policies=pod_security.POLICIES) if f.policy == "pss-baseline-privileged"]
    assert len(messages) == 1 and messages[0].startswith(f"{path} (container \"app\").securityContext.privileged")


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("v1", "ConfigMap"), ("v1", "Service"), ("example.com/v1", "Deployment"), ("postgresql.cnpg.io/v1", "Cluster")],
)
def test_objects_that_run_no_pods_are_not_judged(api_version, kind):
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": {"template": {"spec": PRIVILEGED_POD_SPEC}}}
    assert run([obj], policies=pod_security.POLICIES) == []


def test_pure_checks_can_run_without_the_sdk():
    spec = {"hostNetwork": True, "containers": [{"name": "a", "securityContext": {"runAsUser": 0.0}}]}
    assert pod_security.check_host_namespaces(spec, {}) == [
        "spec.hostNetwork is true: remove it or set it to false (the pod must not share the node's namespaces)"
    ]
    # Wire form: 0.0 is root just like 0.
    assert pod_security.check_run_as_user(spec, {}, spec_path="spec.template.spec") == [
        'spec.template.spec.containers[0] (container "a").securityContext.runAsUser is 0 (root): '
        "set a non-zero uid, e.g. 10001, or remove it"
    ]
    assert pod_security.run_checks(pod_security.BASELINE_CHECKS, "kubernetes:core/v1:Pod", {"spec": spec}) == [
        ("pss-baseline-host-namespaces", "spec.hostNetwork is true: remove it or set it to false (the pod must not "
         "share the node's namespaces)")
    ]


def test_profiles_hold_exactly_their_levels_checks():
    baseline = {p.name for p in pod_security.profile_policies("baseline")}
    restricted = {p.name for p in pod_security.profile_policies("restricted")}
    assert baseline == set(pod_security.BASELINE_CHECKS) and all(n.startswith("pss-baseline-") for n in baseline)
    assert restricted == baseline | set(pod_security.RESTRICTED_CHECKS)
    assert all(n.startswith("pss-restricted-") for n in pod_security.RESTRICTED_CHECKS)
    with pytest.raises(ValueError, match="unknown profile 'privileged'"):
        pod_security.profile_policies("privileged")


def _recorded(inputs: dict) -> RecordedResource:
    return RecordedResource(urn="urn:pulumi:dev::platform::kubernetes:apps/v1:Deployment::web",
                            type="kubernetes:apps/v1:Deployment", name="web", inputs=inputs)


def test_pulumi_wire_form_floats_and_secrets_are_judged_like_plain_values():
    obj = hardened_deployment()
    template(obj)["spec"]["securityContext"]["runAsUser"] = 0.0
    template(obj)["spec"]["hostNetwork"] = wrap_secret(True)  # a secret input is still the value it wraps
    hits = policies_hit(analyze([_recorded(obj)], policies=pod_security.POLICIES))
    assert hits == {"pss-restricted-run-as-user", "pss-baseline-host-namespaces"}


def test_an_unknown_value_during_preview_is_an_advisory_note_not_a_violation():
    obj = hardened_deployment()
    template(obj)["spec"]["containers"][0]["securityContext"]["privileged"] = Unknown()
    findings = [f for f in analyze([_recorded(obj)], policies=pod_security.POLICIES) if f.policy == "pss-baseline-privileged"]
    assert len(findings) == 1
    assert findings[0].enforcement == "advisory"
    assert "can't be known during preview" in findings[0].message


def test_an_unknown_annotation_of_another_kind_leaves_every_check_able_to_run():
    # Found by `make e2e`: during a real first preview the checksum annotation (an HMAC under a password not
    # generated yet) is unknown; the AppArmor check read every annotation's value and could not run.
    obj = hardened_deployment()
    template(obj)["metadata"]["annotations"] = {"checksum/secret": Unknown()}
    assert analyze([_recorded(obj)], policies=pod_security.POLICIES) == []
