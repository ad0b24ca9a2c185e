"""Pod Security Standards at every policy version, on every pod-bearing kind, and `tools.check --pss-version`.

Each boundary row names a policy, a change to a pod that is clean at every version, the version where the check
(or its behaviour) changes, and whether the pod violates the policy just before and at that version. Every pod
goes through the analyzer (the engine's path), with the namespace's version set as tools.check sets it.
"""

from __future__ import annotations

import copy
import io
import json

import pytest
import yaml

from policies import pod_security, pss_versions
from policies.pss_versions import LATEST, Version, VersionError, parse_version
from tests.policies.conftest import DEL, SET, apply
from tools import analyzer
from tools.check import main as check_main

CLEAN_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "init", "image": "app:1", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
        "containers": [{"name": "web", "image": "app:1", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    },
}  # fmt: skip
WEB = "spec.containers[0]"
INIT = "spec.initContainers[0]"
WINDOWS = (SET, "spec.os", {"name": "windows"})
USER_NAMESPACE = (SET, "spec.hostUsers", False)
PER_CONTROL = pod_security.BASELINE_POLICIES + pod_security.RESTRICTED_POLICIES


@pytest.fixture(scope="module")
def servicer():
    """One configured analyzer for the whole module: building it is most of a run's cost."""
    return analyzer.build_servicer(PER_CONTROL, {"all": "mandatory"})


def findings(servicer, obj: dict, version: Version) -> dict[str, list[str]]:
    """policy -> messages for one object judged at `version` (as the default of its namespace)."""
    with pod_security.namespace_versions(default=version):
        result = analyzer.analyze_with(servicer, [analyzer.manifest_resource(obj)], stack_policies=False)
    hits: dict[str, list[str]] = {}
    for finding in result:
        hits.setdefault(finding.policy, []).append(finding.message)
    return hits


def pod(*changes) -> dict:
    return apply(list(changes), copy.deepcopy(CLEAN_POD))


def v(text: str) -> Version:
    return parse_version(text)


def test_the_clean_pod_passes_every_policy_at_every_version(servicer):
    for minor in range(LATEST[1] + 1):
        assert findings(servicer, pod(), (1, minor)) == {}, minor


# (policy, case, changes, version where the check or its behaviour changes, violates just before, violates at it)
BOUNDARIES = [
    ("pss-baseline-sysctls", "ip_local_reserved_ports", [(SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.ip_local_reserved_ports", "value": "1024-4999"}])], "v1.27", True, False),
    ("pss-baseline-sysctls", "tcp_keepalive_time", [(SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_keepalive_time", "value": "7200"}])], "v1.29", True, False),
    ("pss-baseline-sysctls", "tcp_fin_timeout", [(SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_fin_timeout", "value": "60"}])], "v1.29", True, False),
    ("pss-baseline-sysctls", "tcp_rmem", [(SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 16777216"}])], "v1.32", True, False),
    ("pss-baseline-sysctls", "tcp_slow_start_after_idle", [(SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"}])], "v1.37", True, False),
    ("pss-baseline-sysctls", "tcp_notsent_lowat", [(SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_notsent_lowat", "value": "16384"}])], "v1.37", True, False),
    ("pss-baseline-selinux", "container_engine_t", [(SET, f"{WEB}.securityContext.seLinuxOptions", {"type": "container_engine_t"})], "v1.31", True, False),
    ("pss-baseline-host-probes-lifecycle", "probe host", [(SET, f"{WEB}.livenessProbe", {"httpGet": {"host": "10.0.0.1", "port": 80}})], "v1.34", False, True),
    ("pss-baseline-host-probes-lifecycle", "sidecar preStop host", [(SET, f"{INIT}.restartPolicy", "Always"), (SET, f"{INIT}.lifecycle.preStop.tcpSocket", {"host": "db", "port": 5432})], "v1.34", False, True),
    ("pss-baseline-proc-mount", "Unmasked in a user namespace", [USER_NAMESPACE, (SET, f"{WEB}.securityContext.procMount", "Unmasked")], "v1.35", True, False),
    ("pss-baseline-seccomp", "field Unconfined", [(SET, "spec.securityContext.seccompProfile.type", "Unconfined")], "v1.19", False, True),
    ("pss-baseline-seccomp", "alpha annotation unconfined", [(SET, ("metadata", "annotations", "seccomp.security.alpha.kubernetes.io/pod"), "unconfined")], "v1.19", True, False),
    ("pss-baseline-seccomp", "container alpha annotation", [(SET, ("metadata", "annotations", "container.seccomp.security.alpha.kubernetes.io/web"), "unconfined")], "v1.19", True, False),
    ("pss-restricted-privilege-escalation", "true", [(SET, f"{WEB}.securityContext.allowPrivilegeEscalation", True)], "v1.8", False, True),
    ("pss-restricted-privilege-escalation", "windows pod without it", [WINDOWS, (DEL, f"{WEB}.securityContext.allowPrivilegeEscalation", None)], "v1.25", True, False),
    ("pss-restricted-run-as-non-root", "false in a user namespace", [USER_NAMESPACE, (SET, "spec.securityContext.runAsNonRoot", False)], "v1.35", True, False),
    ("pss-restricted-run-as-user", "uid 0", [(SET, "spec.securityContext.runAsUser", 0)], "v1.23", False, True),
    ("pss-restricted-run-as-user", "uid 0 in a user namespace", [USER_NAMESPACE, (SET, f"{INIT}.securityContext.runAsUser", 0)], "v1.35", True, False),
    ("pss-restricted-seccomp", "not set", [(DEL, "spec.securityContext.seccompProfile", None)], "v1.19", False, True),
    ("pss-restricted-seccomp", "windows pod without it", [WINDOWS, (DEL, "spec.securityContext.seccompProfile", None)], "v1.25", True, False),
    ("pss-restricted-capabilities", "no drop ALL", [(DEL, f"{WEB}.securityContext.capabilities", None)], "v1.22", False, True),
    ("pss-restricted-capabilities", "windows pod without drop", [WINDOWS, (DEL, f"{WEB}.securityContext.capabilities", None)], "v1.25", True, False),
    ("pss-restricted-proc-mount", "Unmasked in a user namespace", [USER_NAMESPACE, (SET, f"{WEB}.securityContext.procMount", "Unmasked")], "v1.35", False, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "changes", "boundary", "before", "at"),
    [pytest.param(p, changes, b, before, at, id=f"{p}: {case} @ {b}") for p, case, changes, b, before, at in BOUNDARIES],
)
def test_each_version_boundary(servicer, policy, changes, boundary, before, at):
    version = v(boundary)
    previous = (version[0], version[1] - 1)
    obj = pod(*changes)
    assert (policy in findings(servicer, obj, previous)) == before
    assert (policy in findings(servicer, obj, version)) == at
    # Nothing changes after the boundary but at boundaries of its own: latest agrees with the boundary here.
    assert (policy in findings(servicer, obj, LATEST)) == at


def test_every_version_boundary_of_every_check_has_a_row():
    covered = {(policy, v(boundary)) for policy, _, _, boundary, _, _ in BOUNDARIES}
    for policy, versions in pss_versions.CHECK_VERSIONS.items():
        for version in versions:
            if version != (1, 0):
                assert (policy, version) in covered, (policy, version)


# Checks that exist from v1.0: a violation fails at v1.0 already, and the clean pod passes (test above).
FROM_V1_0 = [
    ("pss-baseline-host-process", [(SET, "spec.securityContext.windowsOptions", {"hostProcess": True})]),
    ("pss-baseline-host-namespaces", [(SET, "spec.hostPID", True)]),
    ("pss-baseline-privileged", [(SET, f"{WEB}.securityContext.privileged", True)]),
    ("pss-baseline-capabilities", [(SET, f"{WEB}.securityContext.capabilities.add", ["SYS_ADMIN"])]),
    ("pss-baseline-host-path-volumes", [(SET, "spec.volumes[0]", {"name": "tmp", "hostPath": {"path": "/"}})]),
    ("pss-baseline-host-ports", [(SET, f"{WEB}.ports", [{"containerPort": 80, "hostPort": 80}])]),
    # The appArmorProfile field was added to the 1.0 check in place: checked at every pinned version.
    ("pss-baseline-apparmor", [(SET, f"{WEB}.securityContext.appArmorProfile", {"type": "Unconfined"})]),
    ("pss-baseline-selinux", [(SET, "spec.securityContext.seLinuxOptions", {"type": "spc_t"})]),
    ("pss-baseline-proc-mount", [(SET, f"{WEB}.securityContext.procMount", "Unmasked")]),
    ("pss-baseline-seccomp", [(SET, ("metadata", "annotations", "seccomp.security.alpha.kubernetes.io/pod"), "unconfined")]),
    ("pss-baseline-sysctls", [(SET, "spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}])]),
    ("pss-restricted-volume-types", [(SET, "spec.volumes[0]", {"name": "tmp", "nfs": {"server": "nfs", "path": "/"}})]),
    ("pss-restricted-run-as-non-root", [(SET, "spec.securityContext.runAsNonRoot", False)]),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "changes"), FROM_V1_0, ids=[policy for policy, _ in FROM_V1_0])
def test_checks_that_exist_from_v1_0(servicer, policy, changes):
    hits = findings(servicer, pod(*changes), (1, 0))
    assert policy in hits and all(message.endswith("(Pod Security policy version v1.0)") for message in hits[policy])


def test_first_versions_cover_every_per_control_policy():
    assert set(pss_versions.CHECK_VERSIONS) == {policy.name for policy in PER_CONTROL}
    firsts = {policy for policy in pss_versions.CHECK_VERSIONS if pss_versions.first_version(policy) == (1, 0)}
    assert firsts == {policy for policy, _ in FROM_V1_0}


def test_image_volumes_pass_restricted_at_every_version_and_an_empty_source_is_emptydir(servicer):
    obj = pod((SET, "spec.volumes", [{"name": "data", "image": {"reference": "ghcr.io/x/data:1"}}, {"name": "scratch"}]))
    for version in ((1, 0), (1, 32), LATEST):
        assert findings(servicer, obj, version) == {}, version


def test_the_allow_lists_only_grow_and_latest_is_the_newest_boundary():
    for history in (pss_versions.SYSCTLS, pss_versions.SELINUX_TYPES):
        for (_, older), (_, newer) in zip(history, history[1:]):
            assert older < newer
    assert max(max(versions) for versions in pss_versions.CHECK_VERSIONS.values()) == LATEST == (1, 37)


# --- versions and labels ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("latest", LATEST), ("v1.0", (1, 0)), ("v1.9", (1, 9)), ("v1.28", (1, 28)), ("v1.37", (1, 37)), ("v1.40", LATEST)],
)
def test_parse_version_accepts_what_pod_security_admission_accepts(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["1.28", "v1.028", "v2.0", "v1.", "V1.28", "v1.28.0", "", "Latest", None, 1.28])
def test_parse_version_rejects_everything_else(text):
    with pytest.raises(VersionError, match='use "latest" or "v1.x"'):
        parse_version(text)


def test_a_namespace_label_pins_a_version_and_an_invalid_one_pins_latest():
    label = pss_versions.ENFORCE_VERSION_LABEL
    assert pss_versions.label_pin({}) is None and pss_versions.label_pin(None) is None
    assert pss_versions.label_pin({label: "v1.20"}) == (1, 20)
    assert pss_versions.label_pin({label: "latest"}) == LATEST
    assert pss_versions.label_pin({label: "1.20"}) == LATEST  # api.PolicyToEvaluate: ParseVersion's latest on error


def namespace(name: str, version: str | None) -> dict:
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    if version is not None:
        labels[pss_versions.ENFORCE_VERSION_LABEL] = version
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_namespace_pins_come_from_namespace_objects_only():
    objects = [namespace("old", "v1.28"), namespace("new", "latest"), namespace("plain", None), pod()]
    assert pod_security.namespace_pins(objects) == {"old": (1, 28), "new": LATEST}


def test_the_per_control_policies_judge_each_namespace_at_its_pin(servicer):
    keepalive = (SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}])
    in_old, in_new = pod(keepalive), pod(keepalive)
    in_old["metadata"]["namespace"], in_new["metadata"]["namespace"] = "old", "new"
    with pod_security.namespace_versions({"old": (1, 28)}):
        result = analyzer.analyze_with(servicer, analyzer.manifest_resources([in_old, in_new]), stack_policies=False)
    assert [(f.name, f.policy) for f in result] == [("old/web", "pss-baseline-sysctls")]


# --- the stack policy: where the pack sees Namespaces ----------------------------------------------------------


def stack_findings(objects: list[dict]) -> list:
    return [
        f for f in analyzer.analyze_manifests(objects, policies=pod_security.POLICIES, stack_policies=True)
        if f.policy == "pss-enforce-version"
    ]  # fmt: skip


def test_the_stack_policy_reports_what_the_pinned_version_forbids_and_latest_allows():
    keepalive = pod((SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]))
    keepalive["metadata"]["namespace"] = "old"
    [finding] = stack_findings([namespace("old", "v1.28"), keepalive])
    assert finding.name == "old/web" and finding.enforcement == "mandatory"
    assert finding.message.startswith(
        "pss-baseline-sysctls at policy version v1.28 (namespace 'old' pins it with "
        "pod-security.kubernetes.io/enforce-version; the per-control policies judged v1.37): "
        "spec.securityContext.sysctls[0].name is 'net.ipv4.tcp_keepalive_time'"
    )


@pytest.mark.parametrize("label", ["latest", None, "v1.99", "not-a-version"])
def test_the_stack_policy_is_silent_where_the_namespace_is_judged_at_latest(label):
    keepalive = pod((SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]))
    keepalive["metadata"]["namespace"] = "old"
    assert stack_findings([namespace("old", label), keepalive]) == []


def test_the_stack_policy_reports_no_violation_twice_nor_one_of_another_namespace():
    sysctl = (SET, "spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}])  # forbidden everywhere
    in_old, elsewhere = pod(sysctl), pod((SET, "spec.securityContext.runAsUser", 0))
    in_old["metadata"]["namespace"] = "old"
    assert stack_findings([namespace("old", "v1.10"), in_old, elsewhere]) == []
    # The same pins as the stack, as tools.check sets them: nothing left for the stack policy.
    in_old = pod((SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_rmem", "value": "1 2 3"}]))
    in_old["metadata"]["namespace"] = "old"
    with pod_security.namespace_versions({"old": (1, 10)}):
        assert stack_findings([namespace("old", "v1.10"), in_old]) == []
    assert len(stack_findings([namespace("old", "v1.10"), in_old])) == 1


def test_the_stack_policy_is_in_the_pack_but_not_in_a_profile():
    from policies.pack import ALL_POLICIES

    assert pod_security.ENFORCE_VERSION_POLICY in ALL_POLICIES
    assert pod_security.ENFORCE_VERSION_POLICY not in pod_security.profile_policies("restricted")


# --- every pod-bearing kind ------------------------------------------------------------------------------------

KINDS = {
    "Pod": ("v1", lambda t: {"spec": t["spec"]}, "spec"),
    "PodTemplate": ("v1", lambda t: {"template": t}, "template.spec"),
    "ReplicationController": ("v1", lambda t: {"spec": {"template": t}}, "spec.template.spec"),
    "Deployment": ("apps/v1", lambda t: {"spec": {"template": t}}, "spec.template.spec"),
    "StatefulSet": ("apps/v1", lambda t: {"spec": {"template": t}}, "spec.template.spec"),
    "DaemonSet": ("apps/v1", lambda t: {"spec": {"template": t}}, "spec.template.spec"),
    "ReplicaSet": ("apps/v1", lambda t: {"spec": {"template": t}}, "spec.template.spec"),
    "Job": ("batch/v1", lambda t: {"spec": {"template": t}}, "spec.template.spec"),
    "CronJob": ("batch/v1", lambda t: {"spec": {"jobTemplate": {"spec": {"template": t}}}}, "spec.jobTemplate.spec.template.spec"),
}  # fmt: skip


def as_kind(kind: str, bare_pod: dict) -> dict:
    api_version, wrap, _ = KINDS[kind]
    template = {"metadata": copy.deepcopy(bare_pod.get("metadata", {})), "spec": copy.deepcopy(bare_pod["spec"])}
    template["metadata"].pop("name", None)
    template["metadata"].pop("namespace", None)
    metadata = {"name": "web", "namespace": "shop", **(template["metadata"] if kind == "Pod" else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **wrap(template)}


def same_as_pod(servicer, kind: str, bare_pod: dict, version: Version = LATEST) -> dict[str, list[str]]:
    """The findings for `kind` wrapping the pod, with the kind's template path rewritten to a bare Pod's."""
    prefix = KINDS[kind][2]
    hits = findings(servicer, as_kind(kind, bare_pod), version)
    return {
        policy: [m.replace(prefix, "spec", 1).replace(prefix.removesuffix("spec") + "metadata", "metadata", 1) for m in messages]
        for policy, messages in hits.items()
    }


# One violation per per-control policy, each failing at latest.
VIOLATIONS = {
    "pss-baseline-host-process": [(SET, f"{WEB}.securityContext.windowsOptions", {"hostProcess": True})],
    "pss-baseline-host-namespaces": [(SET, "spec.hostIPC", True)],
    "pss-baseline-privileged": [(SET, f"{WEB}.securityContext.privileged", True)],
    "pss-baseline-capabilities": [(SET, f"{WEB}.securityContext.capabilities.add", ["NET_RAW"])],
    "pss-baseline-host-path-volumes": [(SET, "spec.volumes[0]", {"name": "tmp", "hostPath": {"path": "/var"}})],
    "pss-baseline-host-ports": [(SET, f"{WEB}.ports", [{"containerPort": 8080, "hostPort": 8080}])],
    "pss-baseline-host-probes-lifecycle": [(SET, f"{WEB}.readinessProbe", {"tcpSocket": {"host": "db", "port": 5432}})],
    "pss-baseline-apparmor": [(SET, ("metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/web"), "unconfined")],
    "pss-baseline-selinux": [(SET, f"{WEB}.securityContext.seLinuxOptions", {"role": "sysadm_r"})],
    "pss-baseline-proc-mount": [(SET, f"{WEB}.securityContext.procMount", "Unmasked")],
    "pss-baseline-seccomp": [(SET, f"{WEB}.securityContext.seccompProfile", {"type": "Unconfined"})],
    "pss-baseline-sysctls": [(SET, "spec.securityContext.sysctls", [{"name": "kernel.sem", "value": "1"}])],
    "pss-restricted-volume-types": [(SET, "spec.volumes[0]", {"name": "tmp", "gitRepo": {"repository": "x"}})],
    "pss-restricted-privilege-escalation": [(DEL, f"{WEB}.securityContext.allowPrivilegeEscalation", None)],
    "pss-restricted-run-as-non-root": [(SET, f"{WEB}.securityContext.runAsNonRoot", False)],
    "pss-restricted-run-as-user": [(SET, f"{WEB}.securityContext.runAsUser", 0)],
    "pss-restricted-seccomp": [(SET, f"{WEB}.securityContext.seccompProfile", {"type": "Unconfined"})],
    "pss-restricted-capabilities": [(SET, f"{WEB}.securityContext.capabilities.add", ["CHOWN"])],
    "pss-restricted-proc-mount": [(SET, f"{WEB}.securityContext.procMount", "Unmasked")],
}  # fmt: skip


def test_every_per_control_policy_has_a_violation():
    assert set(VIOLATIONS) == {policy.name for policy in PER_CONTROL}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("policy", list(VIOLATIONS))
def test_every_check_gives_the_same_verdict_on_every_kind_as_on_a_bare_pod(servicer, policy, kind):
    bare = pod(*VIOLATIONS[policy])
    expected = findings(servicer, bare, LATEST)
    assert policy in expected
    assert same_as_pod(servicer, kind, bare) == expected


CONTAINER_LEVEL = [name for name, changes in VIOLATIONS.items() if str(changes[0][1]).startswith(WEB)]


def move_to(bare: dict, where: str) -> dict:
    """The pod with its violating container turned into a sidecar or an ephemeral container."""
    spec = bare["spec"]
    container = spec["containers"][0]
    if where == "sidecar":
        spec["initContainers"].append({**container, "name": "proxy", "restartPolicy": "Always"})
    else:
        spec["ephemeralContainers"] = [{**container, "name": "debug", "targetContainerName": "app"}]
    spec["containers"][0] = {**copy.deepcopy(CLEAN_POD["spec"]["containers"][0]), "name": "app"}
    return bare


@pytest.mark.parametrize("where", ["sidecar", "ephemeral"])
@pytest.mark.parametrize("policy", CONTAINER_LEVEL)
def test_sidecars_and_ephemeral_containers_are_judged_like_containers(servicer, policy, where):
    bare = move_to(pod(*VIOLATIONS[policy]), where)
    path = "spec.initContainers[1] (container \"proxy\")" if where == "sidecar" else "spec.ephemeralContainers[0] (container \"debug\")"
    hits = findings(servicer, bare, LATEST)
    assert hits.get(policy) and all(message.startswith(path) for message in hits[policy]), hits
    assert same_as_pod(servicer, "CronJob", bare) == hits


# --- tools.check --pss-version ---------------------------------------------------------------------------------


def run_check(*argv) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = check_main([str(arg) for arg in argv], stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def write(path, *documents):
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


# Root uid without privilege-escalation, capability or seccomp settings: only checks newer than v1.0 object.
def legacy_pod() -> dict:
    return pod(
        (SET, "spec.securityContext.runAsUser", 0),
        (DEL, "spec.securityContext.seccompProfile", None),
        (SET, f"{WEB}.securityContext", {}),
        (SET, f"{INIT}.securityContext", {}),
        (SET, f"{WEB}.livenessProbe", {"httpGet": {"host": "example.com", "port": 80}}),
    )


LEGACY_AT_LATEST = {
    "pss-baseline-host-probes-lifecycle", "pss-restricted-privilege-escalation", "pss-restricted-run-as-user",
    "pss-restricted-seccomp", "pss-restricted-capabilities",
}  # fmt: skip


def policies_of(out: str) -> set[str]:
    return {finding["policy"] for finding in json.loads(out)}


def test_check_at_v1_0_runs_only_the_checks_that_existed(tmp_path):
    path = write(tmp_path / "pod.yaml", legacy_pod())
    assert run_check("--profile", "restricted", "--pss-version", "v1.0", path)[:2] == (
        0, "0 finding(s), 0 mandatory, 0 advisory, in 1 object(s) from 1 file(s)\n"
    )  # fmt: skip
    code, out, _ = run_check("--profile", "restricted", "--pss-version", "v1.22", "--format", "json", path)
    assert code == 1 and policies_of(out) == {"pss-restricted-privilege-escalation", "pss-restricted-capabilities", "pss-restricted-seccomp"}


@pytest.mark.parametrize("version", ["v1.37", "latest", None])
def test_check_at_v1_37_is_latest_and_the_default(tmp_path, version):
    path = write(tmp_path / "pod.yaml", legacy_pod())
    argv = ["--profile", "restricted", "--format", "json", path] + (["--pss-version", version] if version else [])
    code, out, err = run_check(*argv)
    assert (code, err) == (1, "") and policies_of(out) == LEGACY_AT_LATEST
    assert all("policy version" not in finding["message"] for finding in json.loads(out))


@pytest.mark.parametrize("value", ["1.29", "v1.029", "v2.1", "newest", ""])
def test_check_rejects_a_bad_version_with_exit_2(tmp_path, value):
    code, out, err = run_check("--profile", "baseline", "--pss-version", value, write(tmp_path / "pod.yaml", pod()))
    assert (code, out) == (2, "")
    assert f"--pss-version: {value!r} is not a Pod Security policy version" in err and 'use "latest" or "v1.x"' in err


def test_check_needs_a_profile_for_pss_version(tmp_path):
    code, out, err = run_check("--pss-version", "v1.30", write(tmp_path / "pod.yaml", pod()))
    assert (code, out) == (2, "") and "--pss-version needs --profile" in err


def test_check_judges_a_newer_version_as_latest_with_a_warning(tmp_path):
    code, out, err = run_check("--profile", "restricted", "--pss-version", "v1.40", "--format", "json", write(tmp_path / "p.yaml", legacy_pod()))
    assert code == 1 and policies_of(out) == LEGACY_AT_LATEST and "newer than the newest policy version; judging at v1.37" in err


def test_check_honours_namespace_labels_in_the_same_input_over_pss_version(tmp_path):
    keepalive = pod((SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]))
    pinned, unpinned, invalid = copy.deepcopy(keepalive), copy.deepcopy(keepalive), copy.deepcopy(keepalive)
    pinned["metadata"]["namespace"], invalid["metadata"]["namespace"] = "old", "odd"
    write(tmp_path / "ns.yaml", namespace("old", "v1.28"), namespace("odd", "v1.028"))
    write(tmp_path / "pods.yaml", pinned, unpinned, invalid)
    code, out, err = run_check("--profile", "baseline", "--format", "json", tmp_path)
    assert code == 1 and [(f["namespace"], f["policy"]) for f in json.loads(out)] == [("old", "pss-baseline-sysctls")]
    assert json.loads(out)[0]["message"].endswith("(Pod Security policy version v1.28)")
    assert "Namespace odd: pod-security.kubernetes.io/enforce-version is 'v1.028'" in err
    # --pss-version is the cluster default: it judges the unpinned namespace, never overrides a label.
    code, out, _ = run_check("--profile", "baseline", "--pss-version", "v1.25", "--format", "json", tmp_path)
    assert code == 1 and sorted(f["namespace"] for f in json.loads(out)) == ["old", "shop"]
    # The default run (no profile) honours the labels too.
    code, out, _ = run_check("--format", "json", tmp_path)
    assert ("old", "pss-baseline-sysctls") in {(f["namespace"], f["policy"]) for f in json.loads(out)}
    assert ("shop", "pss-baseline-sysctls") not in {(f["namespace"], f["policy"]) for f in json.loads(out)}


def test_a_namespace_unknown_during_preview_is_judged_at_the_default_not_an_unknown_note(servicer):
    from pulumi.output import Unknown

    from tools.engine import RecordedResource

    obj = pod((SET, "spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]))
    obj["metadata"]["namespace"] = Unknown()  # e.g. the name output of a Namespace created in the same stack
    resource = RecordedResource(urn="urn:pulumi:dev::platform::kubernetes:core/v1:Pod::web", type="kubernetes:core/v1:Pod", name="web", inputs=obj)
    with pod_security.namespace_versions({"old": (1, 28)}, default=(1, 28)):
        result = analyzer.analyze_with(servicer, [resource], stack_policies=False)
    assert [(f.policy, f.enforcement) for f in result] == [("pss-baseline-sysctls", "mandatory")]


@pytest.mark.parametrize("version", [f"v1.{minor}" for minor in range(38)] + ["latest"])
def test_check_takes_every_version_and_judges_the_legacy_pod_by_its_checks(tmp_path, version):
    # At each version exactly the checks that existed then (and object to this pod) report it.
    path = write(tmp_path / "pod.yaml", legacy_pod())
    code, out, err = run_check("--profile", "restricted", "--pss-version", version, "--format", "json", path)
    minor = 37 if version == "latest" else int(version.split(".")[1])
    expected = {"pss-restricted-privilege-escalation"} if minor >= 8 else set()
    expected |= {"pss-restricted-seccomp"} if minor >= 19 else set()
    expected |= {"pss-restricted-capabilities"} if minor >= 22 else set()
    expected |= {"pss-restricted-run-as-user"} if minor >= 23 else set()
    expected |= {"pss-baseline-host-probes-lifecycle"} if minor >= 34 else set()
    assert err == "" and code == (1 if expected else 0) and policies_of(out) == expected
