"""The Kubernetes Pod Security Standards, Baseline and Restricted, one policy per control.

Source of truth: https://kubernetes.io/docs/concepts/security/pod-security-standards/ (kubernetes/website,
CC BY 4.0) and, where the page lags behind, the Pod Security Admission checks it documents (kubernetes/kubernetes,
staging/src/k8s.io/pod-security-admission/policy/check_*.go, Apache-2.0) at policy version v1.35, which `latest`
resolves to. Only the allow-lists below are transcribed from there; the code is written for this pack. Beyond the
page, v1.35 allows `image` volumes (Restricted), net.ipv4.tcp_rmem/tcp_wmem (Baseline), and relaxes runAsNonRoot,
runAsUser and the Baseline procMount check for pods in a user namespace (`hostUsers: false`).
Every pod-bearing kind is judged through its pod template; containers means initContainers, containers and
ephemeralContainers (in that order, as the admission controller visits them).

Each control is a pure function `check_x(pod_spec, pod_metadata, *, spec_path, metadata_path) -> list[str]`
returning messages that name the field path and the fix; the ResourceValidationPolicy around it is thin.
Values arrive in the engine's wire form (numbers are floats: `runAsUser: 0.0` is root) and may be the SDK's
read-only proxies, so only Mapping/Sequence interfaces are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterator, NamedTuple

from pulumi_policy import ResourceValidationPolicy, Severity

PSS_URL = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"

# Baseline: capabilities a container may add (the container runtime's default set).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
# Baseline: namespaced sysctls isolated from other pods (tcp_rmem/tcp_wmem since policy v1.32).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
    }
)  # fmt: skip
# Baseline: SELinux types a pod may ask for ("" = unset; container_engine_t since policy v1.31).
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
APPARMOR_FIELD_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
# Restricted: the only volume sources allowed (`image` since v1.33; the page still lists eight).
RESTRICTED_VOLUME_SOURCES = (
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret",
)  # fmt: skip
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HANDLERS = ("postStart", "preStop")

Check = Callable[..., list[str]]


# --- reading pod specs (plain dicts or the SDK's proxies) ---------------------------------------------------


def get(value: Any, *keys: str) -> Any:
    """value[k1][k2]..., or None as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def items(value: Any) -> Sequence:
    """A list field, or () when it is missing or not a list."""
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def containers(pod_spec: Any, spec_path: str) -> Iterator[tuple[Mapping, str]]:
    """(container, its field path) for every init, regular and ephemeral container."""
    for list_name in CONTAINER_LISTS:
        for index, container in enumerate(items(get(pod_spec, list_name))):
            if isinstance(container, Mapping):
                yield container, f'{spec_path}.{list_name}[{index}] (container "{container.get("name")}")'


def is_windows(pod_spec: Any) -> bool:
    return get(pod_spec, "os", "name") == "windows"


def uses_user_namespace(pod_spec: Any) -> bool:
    """hostUsers: false runs the pod in a user namespace; v1.35 relaxes some controls for such pods (KEP-127)."""
    return get(pod_spec, "hostUsers") is False


class PodTemplate(NamedTuple):
    spec: Mapping
    metadata: Mapping
    spec_path: str
    metadata_path: str


# (API group, kind) -> path of the pod template inside the object.
POD_TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("core", "Pod"): (),
    ("core", "PodTemplate"): ("template",),
    ("core", "ReplicationController"): ("spec", "template"),
    **{(group, kind): ("spec", "template") for group in ("apps", "extensions")
       for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")},
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}  # fmt: skip


def group_and_kind(resource_type: str) -> tuple[str, str]:
    """"kubernetes:apps/v1:Deployment" -> ("apps", "Deployment")."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return "", ""
    return parts[1].split("/")[0], parts[2]


def resource_type_of(obj: Mapping) -> str:
    """The Pulumi type of a plain Kubernetes object: apiVersion "v1" is the core group ("kubernetes:core/v1:Pod")."""
    api_version = str(obj.get("apiVersion") or "")
    return f"kubernetes:{api_version if '/' in api_version else 'core/' + api_version}:{obj.get('kind')}"


def pod_template(resource_type: str, props: Any) -> PodTemplate | None:
    """The pod spec and metadata a pod-bearing object runs, or None for any other object."""
    path = POD_TEMPLATE_PATHS.get(group_and_kind(resource_type))
    if path is None:
        return None
    template = get(props, *path) if path else props
    spec = get(template, "spec")
    if not isinstance(spec, Mapping):
        return None
    metadata = get(template, "metadata")
    prefix = ".".join(path)
    return PodTemplate(
        spec=spec,
        metadata=metadata if isinstance(metadata, Mapping) else {},
        spec_path=f"{prefix}.spec" if prefix else "spec",
        metadata_path=f"{prefix}.metadata" if prefix else "metadata",
    )


# --- Baseline ------------------------------------------------------------------------------------------------


def check_host_process(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    messages = []
    if get(pod_spec, "securityContext", "windowsOptions", "hostProcess") is True:
        messages.append(
            f"{spec_path}.securityContext.windowsOptions.hostProcess is true: remove it or set it to false "
            "(HostProcess containers get privileged access to the Windows node)"
        )
    for container, where in containers(pod_spec, spec_path):
        if get(container, "securityContext", "windowsOptions", "hostProcess") is True:
            messages.append(f"{where}.securityContext.windowsOptions.hostProcess is true: remove it or set it to false")
    return messages


def check_host_namespaces(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    return [
        f"{spec_path}.{field} is true: remove it or set it to false (the pod must not share the node's namespaces)"
        for field in ("hostNetwork", "hostPID", "hostIPC")
        if get(pod_spec, field) is True
    ]


def check_privileged(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    return [
        f"{where}.securityContext.privileged is true: remove it or set it to false "
        "(privileged containers disable most security mechanisms)"
        for container, where in containers(pod_spec, spec_path)
        if get(container, "securityContext", "privileged") is True
    ]


def check_capabilities_baseline(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    messages = []
    for container, where in containers(pod_spec, spec_path):
        added = items(get(container, "securityContext", "capabilities", "add"))
        forbidden = [str(cap) for cap in added if cap not in BASELINE_CAPABILITIES]
        if forbidden:
            messages.append(
                f"{where}.securityContext.capabilities.add has {', '.join(forbidden)}: remove them; only "
                f"{', '.join(sorted(BASELINE_CAPABILITIES))} may be added"
            )
    return messages


def check_host_path_volumes(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    return [
        f'{spec_path}.volumes[{index}].hostPath (volume "{get(volume, "name")}") is set: use an emptyDir, '
        "configMap, secret or persistentVolumeClaim volume instead of a directory of the node"
        for index, volume in enumerate(items(get(pod_spec, "volumes")))
        if get(volume, "hostPath") is not None
    ]


def check_host_ports(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    messages = []
    for container, where in containers(pod_spec, spec_path):
        for index, port in enumerate(items(get(container, "ports"))):
            host_port = get(port, "hostPort")
            if host_port not in (None, 0):
                messages.append(
                    f"{where}.ports[{index}].hostPort is {_number(host_port)}: remove hostPort and expose the port "
                    "through a Service"
                )
    return messages


def check_host_probes_and_lifecycle(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    messages = []
    for container, where in containers(pod_spec, spec_path):
        handlers = [(probe, get(container, probe)) for probe in PROBES]
        handlers += [(f"lifecycle.{hook}", get(container, "lifecycle", hook)) for hook in LIFECYCLE_HANDLERS]
        for field, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = get(handler, action, "host")
                if host:
                    messages.append(
                        f"{where}.{field}.{action}.host is {host!r}: remove host so the kubelet checks the pod itself"
                    )
    return messages


def check_apparmor(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    allowed = "set type to RuntimeDefault or Localhost, or remove appArmorProfile"
    messages = []
    pod_profile = get(pod_spec, "securityContext", "appArmorProfile")
    if pod_profile is not None and get(pod_profile, "type") not in APPARMOR_FIELD_TYPES:
        messages.append(f"{spec_path}.securityContext.appArmorProfile.type is {get(pod_profile, 'type')!r}: {allowed}")
    for container, where in containers(pod_spec, spec_path):
        profile = get(container, "securityContext", "appArmorProfile")
        if profile is not None and get(profile, "type") not in APPARMOR_FIELD_TYPES:
            messages.append(f"{where}.securityContext.appArmorProfile.type is {get(profile, 'type')!r}: {allowed}")
    annotations = get(pod_metadata, "annotations")
    for key in annotations if isinstance(annotations, Mapping) else ():
        value = annotations[key]
        if str(key).startswith(APPARMOR_ANNOTATION_PREFIX) and not _allowed_apparmor_annotation(value):
            messages.append(
                f"{metadata_path}.annotations[{key!r}] is {value!r}: use runtime/default or localhost/<profile>, "
                "or better the securityContext.appArmorProfile field"
            )
    return messages


def _allowed_apparmor_annotation(value: Any) -> bool:
    return value in ("", None, "runtime/default") or (isinstance(value, str) and value.startswith("localhost/"))


def check_selinux(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    messages = _selinux_messages(get(pod_spec, "securityContext", "seLinuxOptions"), f"{spec_path}.securityContext")
    for container, where in containers(pod_spec, spec_path):
        messages += _selinux_messages(get(container, "securityContext", "seLinuxOptions"), f"{where}.securityContext")
    return messages


def _selinux_messages(options: Any, context_path: str) -> list[str]:
    if not isinstance(options, Mapping):
        return []
    messages = []
    selinux_type = options.get("type") or ""
    if selinux_type not in SELINUX_TYPES:
        messages.append(
            f"{context_path}.seLinuxOptions.type is {selinux_type!r}: use one of "
            f"{', '.join(sorted(t for t in SELINUX_TYPES if t))} or leave it unset"
        )
    for field in ("user", "role"):
        if options.get(field):
            messages.append(f"{context_path}.seLinuxOptions.{field} is {options.get(field)!r}: remove it")
    return messages


def check_proc_mount_baseline(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    # v1.35: a pod in its own user namespace may unmask /proc; Restricted still forbids it.
    if uses_user_namespace(pod_spec):
        return []
    return check_proc_mount(pod_spec, pod_metadata, spec_path=spec_path, metadata_path=metadata_path)


def check_proc_mount(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    return [
        f"{where}.securityContext.procMount is {get(container, 'securityContext', 'procMount')!r}: "
        "remove it or set it to Default (the default /proc masks reduce the attack surface)"
        for container, where in containers(pod_spec, spec_path)
        if get(container, "securityContext", "procMount") not in (None, "Default")
    ]


def check_seccomp_baseline(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    fix = "set it to RuntimeDefault or Localhost"
    messages = []
    if get(pod_spec, "securityContext", "seccompProfile", "type") == "Unconfined":
        messages.append(f"{spec_path}.securityContext.seccompProfile.type is 'Unconfined': {fix}")
    for container, where in containers(pod_spec, spec_path):
        if get(container, "securityContext", "seccompProfile", "type") == "Unconfined":
            messages.append(f"{where}.securityContext.seccompProfile.type is 'Unconfined': {fix}")
    return messages


def check_sysctls(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    return [
        f"{spec_path}.securityContext.sysctls[{index}].name is {get(sysctl, 'name')!r}: remove it; only these "
        f"namespaced sysctls are allowed: {', '.join(sorted(SAFE_SYSCTLS))}"
        for index, sysctl in enumerate(items(get(pod_spec, "securityContext", "sysctls")))
        if get(sysctl, "name") not in SAFE_SYSCTLS
    ]


# --- Restricted ----------------------------------------------------------------------------------------------


def check_volume_types(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    messages = []
    for index, volume in enumerate(items(get(pod_spec, "volumes"))):
        if not any(get(volume, source) is not None for source in RESTRICTED_VOLUME_SOURCES):
            used = [key for key in volume if key != "name"] if isinstance(volume, Mapping) else []
            messages.append(
                f'{spec_path}.volumes[{index}] (volume "{get(volume, "name")}") uses {", ".join(used) or "no source"}: '
                f"use one of {', '.join(RESTRICTED_VOLUME_SOURCES)} (e.g. a persistentVolumeClaim)"
            )
    return messages


def check_privilege_escalation(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    if is_windows(pod_spec):
        return []  # a Linux-only control (v1.25+)
    return [
        f"{where}.securityContext.allowPrivilegeEscalation is "
        f"{_describe(get(container, 'securityContext', 'allowPrivilegeEscalation'))}: set it to false"
        for container, where in containers(pod_spec, spec_path)
        if get(container, "securityContext", "allowPrivilegeEscalation") is not False
    ]


def check_run_as_non_root(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    if uses_user_namespace(pod_spec):
        return []  # v1.35: root inside a user namespace is not root on the node
    messages = []
    pod_value = get(pod_spec, "securityContext", "runAsNonRoot")
    if pod_value is False:
        messages.append(f"{spec_path}.securityContext.runAsNonRoot is false: set it to true")
    for container, where in containers(pod_spec, spec_path):
        value = get(container, "securityContext", "runAsNonRoot")
        if value is False:
            messages.append(f"{where}.securityContext.runAsNonRoot is false: set it to true or remove it")
        elif value is None and pod_value is not True:
            messages.append(
                f"{where}.securityContext.runAsNonRoot is not set and {spec_path}.securityContext.runAsNonRoot "
                "is not true: set runAsNonRoot: true on the pod (covers every container) or on this container"
            )
    return messages


def check_run_as_user(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    if uses_user_namespace(pod_spec):
        return []  # v1.35: uid 0 inside a user namespace maps to an unprivileged uid on the node
    fix = "is 0 (root): set a non-zero uid, e.g. 10001, or remove it"
    messages = []
    if _is_zero(get(pod_spec, "securityContext", "runAsUser")):
        messages.append(f"{spec_path}.securityContext.runAsUser {fix}")
    for container, where in containers(pod_spec, spec_path):
        if _is_zero(get(container, "securityContext", "runAsUser")):
            messages.append(f"{where}.securityContext.runAsUser {fix}")
    return messages


def check_seccomp_restricted(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    if is_windows(pod_spec):
        return []  # a Linux-only control (v1.25+)
    fix = "set it to RuntimeDefault or Localhost"
    messages = []
    pod_profile = get(pod_spec, "securityContext", "seccompProfile")
    pod_type = get(pod_profile, "type")
    if pod_profile is not None and pod_type not in SECCOMP_TYPES:
        messages.append(f"{spec_path}.securityContext.seccompProfile.type is {pod_type!r}: {fix}")
    pod_covers = pod_type in SECCOMP_TYPES
    for container, where in containers(pod_spec, spec_path):
        profile = get(container, "securityContext", "seccompProfile")
        if profile is not None and get(profile, "type") not in SECCOMP_TYPES:
            messages.append(f"{where}.securityContext.seccompProfile.type is {get(profile, 'type')!r}: {fix}")
        elif profile is None and not pod_covers:
            messages.append(
                f"{where}.securityContext.seccompProfile is not set and {spec_path}.securityContext.seccompProfile "
                "does not cover it: set seccompProfile.type: RuntimeDefault on the pod or on this container"
            )
    return messages


def check_capabilities_restricted(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    if is_windows(pod_spec):
        return []  # a Linux-only control (v1.25+)
    messages = []
    for container, where in containers(pod_spec, spec_path):
        capabilities = get(container, "securityContext", "capabilities")
        if "ALL" not in list(items(get(capabilities, "drop"))):
            messages.append(f'{where}.securityContext.capabilities.drop does not include "ALL": set drop: ["ALL"]')
        forbidden = [str(cap) for cap in items(get(capabilities, "add")) if cap != "NET_BIND_SERVICE"]
        if forbidden:
            messages.append(
                f"{where}.securityContext.capabilities.add has {', '.join(forbidden)}: remove them; "
                "only NET_BIND_SERVICE may be added back"
            )
    return messages


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else repr(value)


def _describe(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


# --- the policies -------------------------------------------------------------------------------------------

# name -> (check, description). Descriptions head every violation the CLI prints.
BASELINE_CHECKS: dict[str, tuple[Check, str]] = {
    "pss-baseline-host-process": (check_host_process, "Windows HostProcess containers are not allowed (PSS Baseline)."),
    "pss-baseline-host-namespaces": (check_host_namespaces, "Pods must not share the node's network, PID or IPC namespace (PSS Baseline)."),
    "pss-baseline-privileged": (check_privileged, "Containers must not be privileged (PSS Baseline)."),
    "pss-baseline-capabilities": (check_capabilities_baseline, "Containers may add only the default capabilities (PSS Baseline)."),
    "pss-baseline-host-path-volumes": (check_host_path_volumes, "hostPath volumes are not allowed (PSS Baseline)."),
    "pss-baseline-host-ports": (check_host_ports, "Containers must not use host ports (PSS Baseline)."),
    "pss-baseline-host-probes-lifecycle": (check_host_probes_and_lifecycle, "Probes and lifecycle hooks must not target another host (PSS Baseline)."),
    "pss-baseline-apparmor": (check_apparmor, "AppArmor must not be disabled or overridden with an unconfined profile (PSS Baseline)."),
    "pss-baseline-selinux": (check_selinux, "Only container SELinux types; no custom SELinux user or role (PSS Baseline)."),
    "pss-baseline-proc-mount": (check_proc_mount_baseline, "The default /proc masks are required (PSS Baseline)."),
    "pss-baseline-seccomp": (check_seccomp_baseline, "Seccomp must not be Unconfined (PSS Baseline)."),
    "pss-baseline-sysctls": (check_sysctls, "Only safe, namespaced sysctls are allowed (PSS Baseline)."),
}  # fmt: skip

RESTRICTED_CHECKS: dict[str, tuple[Check, str]] = {
    "pss-restricted-volume-types": (check_volume_types, "Only core volume types are allowed (PSS Restricted)."),
    "pss-restricted-privilege-escalation": (check_privilege_escalation, "Containers must set allowPrivilegeEscalation: false (PSS Restricted)."),
    "pss-restricted-run-as-non-root": (check_run_as_non_root, "Containers must run as non-root: runAsNonRoot: true (PSS Restricted)."),
    "pss-restricted-run-as-user": (check_run_as_user, "Containers must not run as uid 0 (PSS Restricted)."),
    "pss-restricted-seccomp": (check_seccomp_restricted, "Seccomp must be RuntimeDefault or Localhost for every container (PSS Restricted)."),
    "pss-restricted-capabilities": (check_capabilities_restricted, "Containers must drop ALL capabilities and add back at most NET_BIND_SERVICE (PSS Restricted)."),
    "pss-restricted-proc-mount": (check_proc_mount, "The default /proc masks are required, also in user namespaces (PSS Restricted)."),
}  # fmt: skip


def run_checks(checks: dict[str, tuple[Check, str]], resource_type: str, props: Any) -> list[tuple[str, str]]:
    """(policy name, message) for every violation of `checks` by one object; [] for objects that run no pods."""
    template = pod_template(resource_type, props)
    if template is None:
        return []
    paths = {"spec_path": template.spec_path, "metadata_path": template.metadata_path}
    return [
        (name, message)
        for name, (check, _) in checks.items()
        for message in check(template.spec, template.metadata, **paths)
    ]


def _validator(check: Check):
    def validate(args, report_violation) -> None:
        template = pod_template(args.resource_type, args.props)
        if template is None:
            return
        for message in check(
            template.spec, template.metadata, spec_path=template.spec_path, metadata_path=template.metadata_path
        ):
            report_violation(message)

    return validate


def _policy(name: str, check: Check, description: str, level: str) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=_validator(check),
        severity=Severity.HIGH if level == "baseline" else Severity.MEDIUM,
        url=f"{PSS_URL}#{level}",
        tags=["pod-security-standards", level],
        remediation_steps="Change the field named in the message as it says; the hardened defaults of "
        "components/ (AppService) already satisfy every Pod Security Standard.",
    )


BASELINE_POLICIES = [_policy(name, check, text, "baseline") for name, (check, text) in BASELINE_CHECKS.items()]
RESTRICTED_POLICIES = [_policy(name, check, text, "restricted") for name, (check, text) in RESTRICTED_CHECKS.items()]
POLICIES: list = BASELINE_POLICIES + RESTRICTED_POLICIES

PROFILES = ("baseline", "restricted")


def runs_pods(resource_type: str, kind: str | None = None, api_version: str | None = None) -> bool:
    """Whether resources of this type have a pod template: the only ones pod_template (so every check) judges."""
    return group_and_kind(resource_type) in POD_TEMPLATE_PATHS


# Which resources a policy can report on at all (see policies.pack.APPLIES_TO): the pod-bearing types.
APPLIES_TO: dict = {policy: runs_pods for policy in POLICIES}


def profile_policies(profile: str) -> list:
    """Exactly the policies of a Pod Security Standards profile: restricted includes baseline."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    return BASELINE_POLICIES if profile == "baseline" else POLICIES
