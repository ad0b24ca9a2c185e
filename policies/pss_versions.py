"""Pod Security Standards policy versions: which check exists at which version, and its allowed values there.

The Pod Security Admission library (kubernetes/kubernetes, staging/src/k8s.io/pod-security-admission, Apache-2.0)
registers every check with one or more `VersionedCheck{MinimumVersion, CheckPod}` entries. policy/registry.go
(`populate`, `inflateVersions`, `EvaluatePod`) turns them into one check list per policy version v1.0..maxVersion:

- a version of a check applies from its MinimumVersion up to the next one's; below its first MinimumVersion a
  check does not exist at all (it is not "treated as the earliest policy": `runAsUser` is simply absent at v1.22);
- every version above maxVersion, and `latest`, is evaluated as maxVersion (`EvaluatePod` clamps);
- api/helpers.go `ParseVersion` accepts exactly "latest" and `^v1\\.([0-9]|[1-9][0-9]*)$`; anything else is an
  error and evaluates as latest (`PolicyToEvaluate` keeps latest for an invalid label). v1.0 is the oldest version.

maxVersion is v1.37 (the newest MinimumVersion registered: `sysctls` 1.37), so LATEST = (1, 37). Behaviour that
upstream patched into an existing version function instead of adding a version (AppArmor fields in 1.30, `image`
volumes in 1.33) applies at every pinned version, exactly as a current API server does.

Check history, transcribed from upstream (P = staging/src/k8s.io/pod-security-admission; file@commit as read;
"PR" = maintainers' pull-request thread, used where the newest file revision was not in the index read):

| policy (this pack)                  | upstream check ID          | versions                 | source |
|-------------------------------------|----------------------------|--------------------------|--------|
| pss-baseline-host-process           | windowsHostProcess         | 1.0                      | P/policy/check_windowsHostProcess.go@da0c8de9 |
| pss-baseline-host-namespaces        | hostNamespaces             | 1.0                      | P/policy/check_hostNamespaces.go@9df7b734 |
| pss-baseline-privileged             | privileged                 | 1.0                      | P/policy/check_privileged.go@008b3652 |
| pss-baseline-capabilities           | capabilities_baseline      | 1.0                      | P/policy/check_capabilities_baseline.go@c004d3b8 |
| pss-baseline-host-path-volumes      | hostPathVolumes            | 1.0                      | P/policy/check_hostPathVolumes.go@b15a9909 |
| pss-baseline-host-ports             | hostPorts                  | 1.0                      | P/policy/check_hostPorts.go@f5a2724d |
| pss-baseline-host-probes-lifecycle  | hostProbesAndHostLifecycle | 1.34                     | P/policy/check_hostProbesAndhostLifecycle.go@2e94b405 |
| pss-baseline-apparmor               | appArmorProfile            | 1.0 (field + annotation) | P/policy/check_appArmorProfile.go@da0c8de9 |
| pss-baseline-selinux                | seLinuxOptions             | 1.0, 1.31                | P/policy/check_seLinuxOptions.go@36907db9 (1.0); PR #126165 (1.31) |
| pss-baseline-proc-mount             | procMount                  | 1.0, 1.35                | P/policy/check_procMount_baseline.go@e8bd3f62 |
| pss-baseline-seccomp                | seccompProfile_baseline    | 1.0 (annotations), 1.19  | P/policy/check_seccompProfile_baseline.go@046d201c |
| pss-baseline-sysctls                | sysctls                    | 1.0, 1.27, 1.29, 1.32, 1.37 | P/test/fixtures_sysctls.go@1132fd0a; PR #127489; PR #138389; P/test/testdata/baseline/v1.37/pass/sysctls1.yaml@a61aa9e6 |
| pss-restricted-volume-types         | restrictedVolumes          | 1.0                      | P/policy/check_restrictedVolumes.go@b8ff6a45, _test.go@030880a5 (image) |
| pss-restricted-privilege-escalation | allowPrivilegeEscalation   | 1.8, 1.25 (windows)      | P/policy/check_allowPrivilegeEscalation.go@422c8fc5, _test.go@78fc8e44 |
| pss-restricted-run-as-non-root      | runAsNonRoot               | 1.0, 1.35                | P/policy/check_runAsNonRoot.go@e8bd3f62 |
| pss-restricted-run-as-user          | runAsUser                  | 1.23, 1.35               | P/policy/check_runAsUser.go@e8bd3f62 |
| pss-restricted-seccomp              | seccompProfile_restricted  | 1.19, 1.25 (windows)     | P/policy/check_seccompProfile_restricted.go@422c8fc5, _test.go@95f08499 |
| pss-restricted-capabilities         | capabilities_restricted    | 1.22, 1.25 (windows)     | P/policy/check_capabilities_restricted.go@422c8fc5; PR #105919 (1.25) |
| pss-restricted-proc-mount           | procMount_restricted       | 1.35                     | P/policy/check_procMount_restricted.go@7c0ae3a5 |

Not upstream, deliberately left out (seen only as unmerged pull-request branches): `ulimits` (KEP-5758, PR #137023
open), `cgroupOptions` (PR #137568 open, alpha in 1.38), `baselineVolumes`/gitRepo (PR #126016 closed).
Restricted checks also carry `OverrideCheckIDs` (restrictedVolumes > hostPathVolumes, seccompProfile_restricted >
seccompProfile_baseline, capabilities_restricted > capabilities_baseline, procMount_restricted > procMount); this pack
reports each level's policies on their own, which gives the same verdict except for Windows pods that set Linux-only
fields, which the API server rejects before admission anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Version = tuple[int, int]

OLDEST: Version = (1, 0)
LATEST: Version = (1, 37)  # upstream registry maxVersion: `latest` and every newer version evaluate as this
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
_VERSION_PATTERN = re.compile(r"v1\.([0-9]|[1-9][0-9]*)")  # api.ParseVersion's versionRegexp, anchored by fullmatch


class VersionError(ValueError):
    """Not a policy version: the message says what is accepted."""


def parse_version(text: Any) -> Version:
    """"latest" or "v1.N" (N without leading zeros), as api.ParseVersion; newer than LATEST evaluates as LATEST."""
    if text == "latest":
        return LATEST
    match = _VERSION_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise VersionError(f'{text!r} is not a Pod Security policy version: use "latest" or "v1.x", e.g. v1.29')
    return min((1, int(match.group(1))), LATEST)


def is_newer_than_latest(text: str) -> bool:
    match = _VERSION_PATTERN.fullmatch(text)
    return match is not None and (1, int(match.group(1))) > LATEST


def label_pin(labels: Any) -> Version | None:
    """The version a namespace's enforce-version label pins; None without the label (the cluster default applies).
    An invalid value pins latest: api.PolicyToEvaluate sets the version ParseVersion returns, latest, on error."""
    value = labels.get(ENFORCE_VERSION_LABEL) if isinstance(labels, Mapping) else None
    if value is None:
        return None
    try:
        return parse_version(value)
    except VersionError:
        return LATEST


def format_version(version: Version) -> str:
    return f"v{version[0]}.{version[1]}"


# --- allowed values that changed between versions --------------------------------------------------------------

# sysctls: each MinimumVersion's set (sysctlsAllowedV1Dot0 .. V1Dot37); each set contains the previous one.
_SYSCTLS_1_0 = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
})  # fmt: skip
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
_SYSCTLS_1_37 = _SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}
SYSCTLS: tuple[tuple[Version, frozenset[str]], ...] = (
    ((1, 0), _SYSCTLS_1_0),
    ((1, 27), _SYSCTLS_1_27),
    ((1, 29), _SYSCTLS_1_29),
    ((1, 32), _SYSCTLS_1_32),
    ((1, 37), _SYSCTLS_1_37),
)

# seLinuxOptions.type ("" = unset): selinuxAllowedTypes1_0, selinuxAllowedTypes1_31.
_SELINUX_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES: tuple[tuple[Version, frozenset[str]], ...] = (
    ((1, 0), _SELINUX_1_0),
    ((1, 31), _SELINUX_1_0 | {"container_engine_t"}),
)


def allowed_at(history: tuple[tuple[Version, frozenset[str]], ...], version: Version) -> frozenset[str]:
    """The set of the newest entry whose MinimumVersion is at or below `version`."""
    chosen = history[0][1]
    for minimum, values in history:
        if minimum <= version:
            chosen = values
    return chosen


# --- when each check (and each of its behaviour changes) starts ----------------------------------------------------

HOST_PROBES_SINCE: Version = (1, 34)  # hostProbesAndHostLifecycle
SECCOMP_FIELDS_SINCE: Version = (1, 19)  # seccompProfile_baseline 1.19 (fields; before: alpha annotations)
SECCOMP_RESTRICTED_SINCE: Version = (1, 19)  # seccompProfile_restricted
PRIVILEGE_ESCALATION_SINCE: Version = (1, 8)  # allowPrivilegeEscalation
CAPABILITIES_RESTRICTED_SINCE: Version = (1, 22)  # capabilities_restricted
RUN_AS_USER_SINCE: Version = (1, 23)  # runAsUser
WINDOWS_EXEMPT_SINCE: Version = (1, 25)  # the 1.25 versions of allowPrivilegeEscalation, seccomp and capabilities
USER_NAMESPACE_RELAXED_SINCE: Version = (1, 35)  # procMount (baseline), runAsNonRoot, runAsUser skip hostUsers: false
PROC_MOUNT_RESTRICTED_SINCE: Version = (1, 35)  # procMount_restricted

# policy name -> the versions at which its upstream check starts or changes (the boundaries tests cover).
CHECK_VERSIONS: dict[str, tuple[Version, ...]] = {
    "pss-baseline-host-process": ((1, 0),),
    "pss-baseline-host-namespaces": ((1, 0),),
    "pss-baseline-privileged": ((1, 0),),
    "pss-baseline-capabilities": ((1, 0),),
    "pss-baseline-host-path-volumes": ((1, 0),),
    "pss-baseline-host-ports": ((1, 0),),
    "pss-baseline-host-probes-lifecycle": (HOST_PROBES_SINCE,),
    "pss-baseline-apparmor": ((1, 0),),
    "pss-baseline-selinux": tuple(minimum for minimum, _ in SELINUX_TYPES),
    "pss-baseline-proc-mount": ((1, 0), USER_NAMESPACE_RELAXED_SINCE),
    "pss-baseline-seccomp": ((1, 0), SECCOMP_FIELDS_SINCE),
    "pss-baseline-sysctls": tuple(minimum for minimum, _ in SYSCTLS),
    "pss-restricted-volume-types": ((1, 0),),
    "pss-restricted-privilege-escalation": (PRIVILEGE_ESCALATION_SINCE, WINDOWS_EXEMPT_SINCE),
    "pss-restricted-run-as-non-root": ((1, 0), USER_NAMESPACE_RELAXED_SINCE),
    "pss-restricted-run-as-user": (RUN_AS_USER_SINCE, USER_NAMESPACE_RELAXED_SINCE),
    "pss-restricted-seccomp": (SECCOMP_RESTRICTED_SINCE, WINDOWS_EXEMPT_SINCE),
    "pss-restricted-capabilities": (CAPABILITIES_RESTRICTED_SINCE, WINDOWS_EXEMPT_SINCE),
    "pss-restricted-proc-mount": (PROC_MOUNT_RESTRICTED_SINCE,),
}


def first_version(policy_name: str) -> Version:
    """The oldest policy version at which the check exists."""
    return CHECK_VERSIONS[policy_name][0]
