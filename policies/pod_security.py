"""The Kubernetes Pod Security Standards, Baseline and Restricted, one policy per control, at any policy version.

Source of truth: the Pod Security Admission checks (kubernetes/kubernetes, staging/src/k8s.io/pod-security-admission/
policy/check_*.go, Apache-2.0); policies/pss_versions.py holds, with the upstream file each came from, which check
exists at which policy version (v1.0 .. v1.37; `latest` is v1.37) and the allow-lists that changed between versions.
Only those allow-lists and version boundaries are transcribed; the code is written for this pack.
Every pod-bearing kind is judged through its pod template; containers means initContainers (sidecars included:
upstream gives `restartPolicy: Always` no special case), containers and ephemeralContainers, in that order, as the
admission controller visits them. A volume without any source is judged as the emptyDir the API server defaults
it to before admission.

Each control is a pure function `check_x(pod_spec, pod_metadata, *, spec_path, metadata_path, version) -> list[str]`
returning messages that name the field path and the fix ("<field> is <value>: <fix>"); `version` is the policy
version (major, minor) to judge at, LATEST by default. Values arrive in the engine's wire form (numbers are floats:
`runAsUser: 0.0` is root) and may be the SDK's read-only proxies, so only Mapping/Sequence interfaces are used.

Which version a pod is judged at. Pod Security Admission judges a pod at the version its namespace's
`pod-security.kubernetes.io/enforce-version` label pins (no label: the cluster default, latest unless configured;
an invalid value: latest). A resource policy sees one object at a time, never the Namespace, so:

- the per-control resource policies judge each pod at the version the active NamespaceVersions table gives its
  namespace (`namespace_versions(...)`, a context variable). Callers that see every object set it: tools.check
  fills it from the Namespace objects of its input (and `--pss-version` as the cluster default), which makes the
  plain-YAML verdict exact. Without a table (the Pulumi CLI) every namespace is judged at latest;
- the stack policy `pss-enforce-version` is where the pack sees the stack's Namespaces. For every pod-bearing
  resource in a namespace whose Namespace pins another version than the one its pod was judged at, it judges the
  pod at the pinned version and reports, on that resource, every violation there that the per-control policies did
  not report. So a Pulumi stack never admits what admission at the pinned version rejects. It cannot withdraw
  per-control findings, though: a pod in a namespace pinned below latest must also pass latest's checks in a Pulumi
  stack (stricter than admission where latest is stricter, e.g. probe hosts before v1.34); tools.check is exact.
  Every namespace of this platform pins `latest` (components/namespace_baseline.py), where both agree.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from pulumi_policy import ResourceValidationPolicy, Severity, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError
from pulumi_policy.secret import Secret

from .operator_pods import OPERATOR_BUILT_PODS
from .pss_versions import (
    CAPABILITIES_RESTRICTED_SINCE,
    ENFORCE_VERSION_LABEL,
    HOST_PROBES_SINCE,
    LATEST,
    PRIVILEGE_ESCALATION_SINCE,
    PROC_MOUNT_RESTRICTED_SINCE,
    RUN_AS_USER_SINCE,
    SECCOMP_FIELDS_SINCE,
    SECCOMP_RESTRICTED_SINCE,
    SELINUX_TYPES,
    SYSCTLS,
    USER_NAMESPACE_RELAXED_SINCE,
    WINDOWS_EXEMPT_SINCE,
    Version,
    allowed_at,
    format_version,
    label_pin,
)

PSS_URL = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"

# Baseline: capabilities a container may add (the container runtime's default set; one version, 1.0).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
APPARMOR_FIELD_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
# Baseline before v1.19: the seccomp alpha annotations (seccompProfile_baseline 1.0).
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
# Restricted: the only volume sources allowed (`image` was added to the 1.0 check in place, so at every version).
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
    """hostUsers: false runs the pod in a user namespace; from v1.35 some controls are relaxed for it (KEP-127)."""
    return get(pod_spec, "hostUsers") is False


def windows_exempt(pod_spec: Any, version: Version) -> bool:
    """The v1.25 versions of the Linux-only restricted checks admit pods that declare spec.os.name: windows."""
    return version >= WINDOWS_EXEMPT_SINCE and is_windows(pod_spec)


def user_namespace_relaxed(pod_spec: Any, version: Version) -> bool:
    return version >= USER_NAMESPACE_RELAXED_SINCE and uses_user_namespace(pod_spec)


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
    # CloudNativePG's PgBouncer: the operator starts its pods from this template, changed (operator_pods.py).
    ("postgresql.cnpg.io", "Pooler"): ("spec", "template"),
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
    operator_built = OPERATOR_BUILT_PODS.get(group_and_kind(resource_type))
    return PodTemplate(
        spec=operator_built(spec) if operator_built else spec,
        metadata=metadata if isinstance(metadata, Mapping) else {},
        spec_path=f"{prefix}.spec" if prefix else "spec",
        metadata_path=f"{prefix}.metadata" if prefix else "metadata",
    )


# --- which version a namespace's pods are judged at ----------------------------------------------------------


@dataclass(frozen=True)
class NamespaceVersions:
    """namespace -> pinned policy version; namespaces without a pin are judged at `default` (the cluster default)."""

    pins: Mapping[str, Version] = field(default_factory=dict)
    default: Version = LATEST

    def of(self, namespace: str | None) -> Version:
        return self.pins.get(namespace, self.default) if namespace is not None else self.default


_NAMESPACE_VERSIONS: contextvars.ContextVar[NamespaceVersions] = contextvars.ContextVar(
    "pss_namespace_versions", default=NamespaceVersions()
)


@contextlib.contextmanager
def namespace_versions(
    pins: Mapping[str, Version] | None = None, default: Version = LATEST
) -> Iterator[NamespaceVersions]:
    """Judge pods at their namespace's pinned version (else `default`) inside the block."""
    table = NamespaceVersions(dict(pins or {}), default)
    token = _NAMESPACE_VERSIONS.set(table)
    try:
        yield table
    finally:
        _NAMESPACE_VERSIONS.reset(token)


def current_namespace_versions() -> NamespaceVersions:
    return _NAMESPACE_VERSIONS.get()


def namespace_of(obj: Any) -> str | None:
    """metadata.namespace of an object, "default" when unset (what the API server uses), None when not known."""
    try:
        namespace = get(obj, "metadata", "namespace")
    except UnknownValueError:  # an SDK proxy during preview: the namespace comes from another resource's output
        return None
    if namespace is None:
        return "default"
    return namespace if isinstance(namespace, str) else None


def namespace_pins(objects: Iterable[Any]) -> dict[str, Version]:
    """namespace name -> version pinned by its Namespace object's enforce-version label (plain objects; Namespaces
    without the label are left out: the cluster default applies to them)."""
    pins: dict[str, Version] = {}
    for obj in objects:
        if not isinstance(obj, Mapping) or obj.get("kind") != "Namespace" or obj.get("apiVersion") != "v1":
            continue
        name, pin = get(obj, "metadata", "name"), label_pin(get(obj, "metadata", "labels"))
        if isinstance(name, str) and pin is not None:
            pins[name] = pin
    return pins


def judged_version(props: Any) -> Version:
    """The version the per-control policies judge this object's pod at, from the active NamespaceVersions."""
    table = current_namespace_versions()
    return table.of(namespace_of(props)) if table.pins else table.default


# --- Baseline ------------------------------------------------------------------------------------------------


def check_host_process(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
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


def check_host_namespaces(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    return [
        f"{spec_path}.{field_name} is true: remove it or set it to false "
        "(the pod must not share the node's namespaces)"
        for field_name in ("hostNetwork", "hostPID", "hostIPC")
        if get(pod_spec, field_name) is True
    ]


def check_privileged(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    return [
        f"{where}.securityContext.privileged is true: remove it or set it to false "
        "(privileged containers disable most security mechanisms)"
        for container, where in containers(pod_spec, spec_path)
        if get(container, "securityContext", "privileged") is True
    ]


def check_capabilities_baseline(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
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


def check_host_path_volumes(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    return [
        f'{spec_path}.volumes[{index}].hostPath (volume "{get(volume, "name")}") is set: use an emptyDir, '
        "configMap, secret or persistentVolumeClaim volume instead of a directory of the node"
        for index, volume in enumerate(items(get(pod_spec, "volumes")))
        if get(volume, "hostPath") is not None
    ]


def check_host_ports(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
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


def check_host_probes_and_lifecycle(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    if version < HOST_PROBES_SINCE:
        return []  # hostProbesAndHostLifecycle exists from v1.34
    messages = []
    for container, where in containers(pod_spec, spec_path):
        handlers = [(probe, get(container, probe)) for probe in PROBES]
        handlers += [(f"lifecycle.{hook}", get(container, "lifecycle", hook)) for hook in LIFECYCLE_HANDLERS]
        for field_name, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = get(handler, action, "host")
                if host:
                    messages.append(
                        f"{where}.{field_name}.{action}.host is {host!r}: "
                        "remove host so the kubelet checks the pod itself"
                    )
    return messages


def check_apparmor(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST) -> list[str]:
    # One upstream version (1.0); the appArmorProfile field check was added to it in place (v1.30 binaries), so a
    # current API server checks the field and the annotation at every pinned version.
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
    # Only the AppArmor keys' values are read: others may be unknown during a real preview (a checksum of a
    # secret not generated yet), and reading one would stop the whole check there.
    apparmor_keys = [key for key in annotations if str(key).startswith(APPARMOR_ANNOTATION_PREFIX)] if isinstance(annotations, Mapping) else []
    for key in apparmor_keys:
        value = annotations[key]
        if not _allowed_apparmor_annotation(value):
            messages.append(
                f"{metadata_path}.annotations[{key!r}] is {value!r}: use runtime/default or localhost/<profile>, "
                "or better the securityContext.appArmorProfile field"
            )
    return messages


def _allowed_apparmor_annotation(value: Any) -> bool:
    return value in ("", None, "runtime/default") or (isinstance(value, str) and value.startswith("localhost/"))


def check_selinux(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST) -> list[str]:
    allowed_types = allowed_at(SELINUX_TYPES, version)
    options = get(pod_spec, "securityContext", "seLinuxOptions")
    messages = _selinux_messages(options, f"{spec_path}.securityContext", allowed_types)
    for container, where in containers(pod_spec, spec_path):
        options = get(container, "securityContext", "seLinuxOptions")
        messages += _selinux_messages(options, f"{where}.securityContext", allowed_types)
    return messages


def _selinux_messages(options: Any, context_path: str, allowed_types: frozenset[str]) -> list[str]:
    if not isinstance(options, Mapping):
        return []
    messages = []
    selinux_type = options.get("type") or ""
    if selinux_type not in allowed_types:
        messages.append(
            f"{context_path}.seLinuxOptions.type is {selinux_type!r}: use one of "
            f"{', '.join(sorted(t for t in allowed_types if t))} or leave it unset"
        )
    for field_name in ("user", "role"):
        if options.get(field_name):
            messages.append(f"{context_path}.seLinuxOptions.{field_name} is {options.get(field_name)!r}: remove it")
    return messages


def check_proc_mount_baseline(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    # v1.35+: a pod in its own user namespace may unmask /proc; Restricted still forbids it.
    if user_namespace_relaxed(pod_spec, version):
        return []
    return _proc_mount_messages(pod_spec, spec_path)


def check_proc_mount(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    if version < PROC_MOUNT_RESTRICTED_SINCE:
        return []  # procMount_restricted exists from v1.35; before, the unrelaxed baseline check covers Restricted
    return _proc_mount_messages(pod_spec, spec_path)


def _proc_mount_messages(pod_spec: Any, spec_path: str) -> list[str]:
    return [
        f"{where}.securityContext.procMount is {get(container, 'securityContext', 'procMount')!r}: "
        "remove it or set it to Default (the default /proc masks reduce the attack surface)"
        for container, where in containers(pod_spec, spec_path)
        if get(container, "securityContext", "procMount") not in (None, "Default")
    ]


def check_seccomp_baseline(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    if version < SECCOMP_FIELDS_SINCE:
        return _seccomp_annotation_messages(pod_spec, pod_metadata, spec_path, metadata_path)
    fix = "set it to RuntimeDefault or Localhost"
    messages = []
    pod_profile = get(pod_spec, "securityContext", "seccompProfile")
    if pod_profile is not None and get(pod_profile, "type") not in SECCOMP_TYPES:
        messages.append(f"{spec_path}.securityContext.seccompProfile.type is {get(pod_profile, 'type')!r}: {fix}")
    for container, where in containers(pod_spec, spec_path):
        profile = get(container, "securityContext", "seccompProfile")
        if profile is not None and get(profile, "type") not in SECCOMP_TYPES:
            messages.append(f"{where}.securityContext.seccompProfile.type is {get(profile, 'type')!r}: {fix}")
    return messages


def _seccomp_annotation_messages(pod_spec: Any, pod_metadata: Any, spec_path: str, metadata_path: str) -> list[str]:
    """seccompProfile_baseline 1.0 (policy versions before v1.19): the alpha annotations, pod and per container."""
    annotations = get(pod_metadata, "annotations")
    if not isinstance(annotations, Mapping):
        return []
    keys = [SECCOMP_POD_ANNOTATION]
    for container, _ in containers(pod_spec, spec_path):
        keys.append(f"{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{container.get('name') or ''}")
    return [
        f"{metadata_path}.annotations[{key!r}] is {annotations[key]!r}: use runtime/default, docker/default or "
        "localhost/<profile>, or remove it"
        for key in dict.fromkeys(keys)
        if key in annotations and not _allowed_seccomp_annotation(annotations[key])
    ]


def _allowed_seccomp_annotation(value: Any) -> bool:
    return value in ("runtime/default", "docker/default") or (isinstance(value, str) and value.startswith("localhost/"))


def check_sysctls(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST) -> list[str]:
    allowed = allowed_at(SYSCTLS, version)
    return [
        f"{spec_path}.securityContext.sysctls[{index}].name is {get(sysctl, 'name')!r}: remove it; only these "
        f"namespaced sysctls are allowed: {', '.join(sorted(allowed))}"
        for index, sysctl in enumerate(items(get(pod_spec, "securityContext", "sysctls")))
        if get(sysctl, "name") not in allowed
    ]


# --- Restricted ----------------------------------------------------------------------------------------------


def check_volume_types(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    messages = []
    for index, volume in enumerate(items(get(pod_spec, "volumes"))):
        if not isinstance(volume, Mapping):
            continue
        used = [key for key in volume if key != "name" and volume[key] is not None]
        if used and not any(source in used for source in RESTRICTED_VOLUME_SOURCES):
            # No source at all is no violation: the API server defaults it to emptyDir before admission.
            messages.append(
                f'{spec_path}.volumes[{index}] (volume "{get(volume, "name")}") uses {", ".join(used)}: '
                f"use one of {', '.join(RESTRICTED_VOLUME_SOURCES)} (e.g. a persistentVolumeClaim)"
            )
    return messages


def check_privilege_escalation(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    if version < PRIVILEGE_ESCALATION_SINCE or windows_exempt(pod_spec, version):
        return []  # allowPrivilegeEscalation exists from v1.8; a Linux-only control from v1.25
    return [
        f"{where}.securityContext.allowPrivilegeEscalation is "
        f"{_describe(get(container, 'securityContext', 'allowPrivilegeEscalation'))}: set it to false"
        for container, where in containers(pod_spec, spec_path)
        if get(container, "securityContext", "allowPrivilegeEscalation") is not False
    ]


def check_run_as_non_root(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    if user_namespace_relaxed(pod_spec, version):
        return []  # v1.35+: root inside a user namespace is not root on the node
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


def check_run_as_user(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    if version < RUN_AS_USER_SINCE or user_namespace_relaxed(pod_spec, version):
        return []  # runAsUser exists from v1.23; v1.35+: uid 0 inside a user namespace is unprivileged on the node
    fix = "is 0 (root): set a non-zero uid, e.g. 10001, or remove it"
    messages = []
    if _is_zero(get(pod_spec, "securityContext", "runAsUser")):
        messages.append(f"{spec_path}.securityContext.runAsUser {fix}")
    for container, where in containers(pod_spec, spec_path):
        if _is_zero(get(container, "securityContext", "runAsUser")):
            messages.append(f"{where}.securityContext.runAsUser {fix}")
    return messages


def check_seccomp_restricted(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    if version < SECCOMP_RESTRICTED_SINCE or windows_exempt(pod_spec, version):
        return []  # seccompProfile_restricted exists from v1.19; a Linux-only control from v1.25
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


def check_capabilities_restricted(
    pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", version=LATEST
) -> list[str]:
    if version < CAPABILITIES_RESTRICTED_SINCE or windows_exempt(pod_spec, version):
        return []  # capabilities_restricted exists from v1.22; a Linux-only control from v1.25
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

ALL_CHECKS: dict[str, tuple[Check, str]] = {**BASELINE_CHECKS, **RESTRICTED_CHECKS}


def run_checks(
    checks: dict[str, tuple[Check, str]], resource_type: str, props: Any, version: Version = LATEST
) -> list[tuple[str, str]]:
    """(policy name, message) for every violation of `checks` at `version` by one object; [] if it runs no pods."""
    template = pod_template(resource_type, props)
    if template is None:
        return []
    paths = {"spec_path": template.spec_path, "metadata_path": template.metadata_path}
    return [
        (name, message)
        for name, (check, _) in checks.items()
        for message in check(template.spec, template.metadata, version=version, **paths)
    ]


def _validator(check: Check):
    def validate(args, report_violation) -> None:
        template = pod_template(args.resource_type, args.props)
        if template is None:
            return
        version = judged_version(args.props)
        suffix = "" if version == LATEST else f" (Pod Security policy version {format_version(version)})"
        for message in check(
            template.spec,
            template.metadata,
            spec_path=template.spec_path,
            metadata_path=template.metadata_path,
            version=version,
        ):
            report_violation(message + suffix)

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


# --- the namespace's pinned version, where the pack sees Namespaces (a stack policy) ---------------------------


def _violation_key(message: str) -> str:
    """What a violation is about (the field and its value), without the fix text, which may name allowed values
    that differ between versions."""
    return message.split(": ", 1)[0]


def pinned_version_findings(
    objects: Iterable[tuple[str, str, Any]], judged: NamespaceVersions | None = None
) -> list[tuple[str, str]]:
    """(urn, message) for each violation at a namespace's pinned version that the per-control policies, judging at
    `judged` (the active table by default), did not report. `objects`: (urn, Pulumi type, plain object) of the stack."""
    judged = judged or current_namespace_versions()
    objects = list(objects)
    pins = namespace_pins(obj for _, _, obj in objects)
    if not pins and judged.default == LATEST and not judged.pins:
        return []  # nothing pinned anywhere: the per-control policies judged every pod at the right version
    findings = []
    for urn, resource_type, obj in objects:
        if pod_template(resource_type, obj) is None:
            continue
        namespace = namespace_of(obj)
        if namespace is None:
            continue
        target, used = pins.get(namespace, judged.default), judged.of(namespace)
        if target == used:
            continue
        at_used = run_checks(ALL_CHECKS, resource_type, obj, used)
        reported = {(name, _violation_key(message)) for name, message in at_used}
        for name, message in run_checks(ALL_CHECKS, resource_type, obj, target):
            if (name, _violation_key(message)) not in reported:
                findings.append((
                    urn,
                    f"{name} at policy version {format_version(target)} (namespace {namespace!r} pins it with "
                    f"{ENFORCE_VERSION_LABEL}; the per-control policies judged {format_version(used)}): {message}",
                ))  # fmt: skip
    return findings


def _reveal(value: Any) -> Any:
    """A plain object (policies.secrets.to_plain) with its secret wrappers removed: admission sees the values."""
    if isinstance(value, Secret):
        return _reveal(value.value)
    if isinstance(value, dict):
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_reveal(item) for item in value]
    return value


def _validate_pinned_versions(args, report_violation) -> None:
    from .secrets import to_plain

    objects = [
        (res.urn, res.resource_type, _reveal(to_plain(res.props)))
        for res in args.resources
        if res.resource_type == "kubernetes:core/v1:Namespace" or runs_pods(res.resource_type)
    ]
    for urn, message in pinned_version_findings(objects):
        report_violation(message, urn)


ENFORCE_VERSION_POLICY = StackValidationPolicy(
    name="pss-enforce-version",
    description="Pods in a namespace whose pod-security.kubernetes.io/enforce-version label pins a policy version "
    "must pass that version's Pod Security Standards checks.",
    validate=_validate_pinned_versions,
    severity=Severity.HIGH,
)

BASELINE_POLICIES = [_policy(name, check, text, "baseline") for name, (check, text) in BASELINE_CHECKS.items()]
RESTRICTED_POLICIES = [_policy(name, check, text, "restricted") for name, (check, text) in RESTRICTED_CHECKS.items()]
POLICIES: list = BASELINE_POLICIES + RESTRICTED_POLICIES + [ENFORCE_VERSION_POLICY]

PROFILES = ("baseline", "restricted")


def runs_pods(resource_type: str, kind: str | None = None, api_version: str | None = None) -> bool:
    """Whether resources of this type have a pod template: the only ones pod_template (so every check) judges."""
    return group_and_kind(resource_type) in POD_TEMPLATE_PATHS


# Which resources a resource policy can report on at all (see policies.pack.APPLIES_TO): the pod-bearing types.
APPLIES_TO: dict = {policy: runs_pods for policy in BASELINE_POLICIES + RESTRICTED_POLICIES}


def profile_policies(profile: str) -> list:
    """Exactly the per-control policies of a Pod Security Standards profile: restricted includes baseline."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    return BASELINE_POLICIES if profile == "baseline" else BASELINE_POLICIES + RESTRICTED_POLICIES
