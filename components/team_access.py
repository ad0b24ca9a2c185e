"""TeamAccess: the stack's `access` grants as RBAC. One namespaced Role per role used (view, edit, deployer), one
RoleBinding per grant (subject: the identity provider's group), and for deployers the grant on the Namespace
itself, rendered for the cluster's owners to apply.

Decisions worth knowing (README, "Team access", for users):

- Every rule names its resources; no wildcard anywhere (the pack's `rbac-no-wildcards`). Each rule holds one
  apiGroup: RBAC grants every group x resource combination of a rule, so two groups in one rule would grant
  plurals that happen to exist in the other group.
- view: get/list/watch on every kind in PLATFORM_KINDS but Secret, and on what the cluster makes from them
  (pods and their logs, ReplicaSets, PVCs, EndpointSlices, Events, CloudNativePG Backups, cert-manager
  CertificateRequests). Logs are the first thing anyone debugging reads; an application that logs a secret leaks
  it there, and that is the application's bug to fix.
- edit: view, plus scaling a Deployment through its `scale` subresource, deleting a pod (its ReplicaSet replaces
  it: a restart) and on-demand CloudNativePG Backups. Nothing that makes or changes a pod template: whoever can
  create a Job or patch a Deployment can mount any Secret of the namespace into a pod of their own. Not
  pods/exec, pods/attach or pods/portforward either: exec and attach reach a running process, whose environment
  holds the Secrets given to it; port-forward reaches a pod's ports around its NetworkPolicy.
- deployer: what pulumi-kubernetes needs for every kind in PLATFORM_KINDS (PROVIDER_VERBS, see there), read
  access to what its await logic watches (AWAITED), and every permission of view and edit: RBAC refuses to
  create or update a Role that grants more than its author holds (no `escalate`), and to bind a Role whose
  permissions the author lacks (no `bind`). Holding them is less power than `escalate` on its own Role, which
  would let it grant itself anything in the namespace. Consequence: a platform upgrade that adds a kind changes
  the deployer's Role, and that first `pulumi up` runs as someone who already holds the new permission.
- The Namespace is cluster-scoped, and so is any grant on it. The program does not manage that grant: on
  `pulumi destroy` a ClusterRole in the stack would be deleted before the Namespace that its permissions let the
  deployer delete, and the stack would change cluster-wide RBAC, which belongs to the cluster's owners. It renders
  it instead (`namespace_access`, a stack output) for them to apply once: get, patch and delete of that one
  Namespace, and list/watch of all Namespaces (names and labels), without which the provider's deletion await
  waits for ever (its informer lists them all: pulumi/pulumi-kubernetes#4580). Not `create`: a new namespace
  has none of the Roles the deployer needs inside it, and RBAC lets nobody create those but someone who already
  holds their permissions there, so a stack's first `pulumi up` runs as the cluster's owners anyway.
- Roles and RoleBindings are deleted with the Namespace (`deleted_with`): on `pulumi destroy` the deployer would
  otherwise delete its own RoleBinding while it still has objects to delete.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

import pulumi
import pulumi_kubernetes as k8s

from components import hardening
from components.team_access_config import AccessGrant, AccessRole

RBAC_GROUP = "rbac.authorization.k8s.io"

# kind -> (apiGroup, plural resource): every namespaced kind the program creates in the stack's namespace.
# The deployer gets PROVIDER_VERBS on each; tests/test_team_access.py fails when a stack renders a kind missing here.
PLATFORM_KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("", "configmaps"),
    "LimitRange": ("", "limitranges"),
    "ResourceQuota": ("", "resourcequotas"),
    "Secret": ("", "secrets"),
    "Service": ("", "services"),
    "ServiceAccount": ("", "serviceaccounts"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "Role": (RBAC_GROUP, "roles"),
    "RoleBinding": (RBAC_GROUP, "rolebindings"),
    "Cluster": ("postgresql.cnpg.io", "clusters"),
    "Pooler": ("postgresql.cnpg.io", "poolers"),
    "ScheduledBackup": ("postgresql.cnpg.io", "scheduledbackups"),
    "ObjectStore": ("barmancloud.cnpg.io", "objectstores"),
    "PodMonitor": ("monitoring.coreos.com", "podmonitors"),
    "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors"),
    "PrometheusRule": ("monitoring.coreos.com", "prometheusrules"),
    "AlertmanagerConfig": ("monitoring.coreos.com", "alertmanagerconfigs"),
    "Gateway": ("gateway.networking.k8s.io", "gateways"),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes"),
    "ReferenceGrant": ("gateway.networking.k8s.io", "referencegrants"),
    "Certificate": ("cert-manager.io", "certificates"),
    "Issuer": ("cert-manager.io", "issuers"),
    "ScaledObject": ("keda.sh", "scaledobjects"),
    "TriggerAuthentication": ("keda.sh", "triggerauthentications"),
    "VerticalPodAutoscaler": ("autoscaling.k8s.io", "verticalpodautoscalers"),
}

READ = ("get", "list", "watch")
# The requests pulumi-kubernetes v4 makes for an object it manages (server-side apply, its default), read in its
# provider/pkg/await and confirmed by the API server's audit log of a real preview, up, refresh and destroy:
# create and update are a PATCH of the whole object (apply), which the API server also authorizes as `create`
# when the object does not exist yet; `get` for refresh and for the live object around a change; list/watch for
# the informers that await readiness and deletion; `delete`. Never `update` (a PUT, which the provider sends only
# to replace a CustomResourceDefinition), never `deletecollection`.
PROVIDER_VERBS = ("get", "list", "watch", "create", "patch", "delete")
# What its await logic lists and watches besides the objects themselves: a Deployment's ReplicaSets, Pods and
# PVCs, a Job's Pods, a Service's Endpoints, and the Events of the object awaited.
AWAITED: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("list", "watch"),
    ("apps", "replicasets"): ("list", "watch"),
    ("", "persistentvolumeclaims"): ("list", "watch"),
    ("", "endpoints"): ("list", "watch"),
    ("", "events"): ("list", "watch"),
}
# What the cluster makes from the platform's objects, for people to look at.
OBSERVED: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): READ,
    ("", "pods/log"): ("get",),
    ("apps", "replicasets"): READ,
    ("", "persistentvolumeclaims"): READ,
    ("discovery.k8s.io", "endpointslices"): READ,
    ("", "events"): READ,
    ("postgresql.cnpg.io", "backups"): READ,
    ("cert-manager.io", "certificaterequests"): READ,
}
# What edit adds to view: none of it can change a pod template or read a Secret.
OPERATIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # kubectl scale PATCHes; with --current-replicas or --resource-version it GETs and UPDATEs.
    ("apps", "deployments/scale"): ("get", "update", "patch"),
    ("", "pods"): ("delete",),
    ("postgresql.cnpg.io", "backups"): ("create",),
}
# The order verbs are written in, for rules people read.
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")

ROLE_NAMES = {role: f"access-{role.value}" for role in AccessRole}

Permission = tuple[str, str, str]  # (apiGroup, resource, verb)


def _permissions(resources: dict[tuple[str, str], tuple[str, ...]]) -> set[Permission]:
    return {(group, resource, verb) for (group, resource), verbs in resources.items() for verb in verbs}


def platform_kind_permissions(verbs: Iterable[str], *, but: Iterable[str] = ()) -> set[Permission]:
    excluded = set(but)
    return {(group, plural, verb) for kind, (group, plural) in PLATFORM_KINDS.items() if kind not in excluded for verb in verbs}


def role_permissions(role: AccessRole) -> set[Permission]:
    view = platform_kind_permissions(READ, but=["Secret"]) | _permissions(OBSERVED)
    if role is AccessRole.VIEW:
        return view
    edit = view | _permissions(OPERATIONS)
    if role is AccessRole.EDIT:
        return edit
    return platform_kind_permissions(PROVIDER_VERBS) | _permissions(AWAITED) | edit


def rules(permissions: Iterable[Permission], resource_names: Iterable[str] = ()) -> list[dict]:
    """RBAC rules granting exactly `permissions`: one apiGroup per rule, resources sharing their verbs together."""
    verbs_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for group, resource, verb in permissions:
        verbs_of[(group, resource)].add(verb)
    resources_of: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (group, resource), verbs in sorted(verbs_of.items()):
        resources_of[(group, tuple(sorted(verbs, key=VERB_ORDER.index)))].append(resource)
    names = {"resourceNames": list(resource_names)} if resource_names else {}
    return [
        {"apiGroups": [group], "resources": resources, **names, "verbs": list(verbs)}
        for (group, verbs), resources in sorted(resources_of.items())
    ]


def namespace_access(namespace: str, groups: list[str]) -> dict:
    """What the cluster's owners apply for the deployer groups (a v1 List for `kubectl apply -f -`): the stack's
    Namespace by name, and list/watch of Namespaces for the provider's informers."""
    name = f"{namespace}-namespace-deployer"
    # Not managed-by pulumi: the cluster's owners apply these, and Pulumi never sees them again.
    labels = {key: value for key, value in hardening.standard_labels("team-access", "access").items() if key != "app.kubernetes.io/managed-by"}
    metadata = {"name": name, "labels": labels}
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRole",
                "metadata": metadata,
                "rules": [
                    *rules({("", "namespaces", verb) for verb in ("get", "patch", "delete")}, resource_names=[namespace]),
                    *rules({("", "namespaces", verb) for verb in ("list", "watch")}),
                ],
            },
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRoleBinding",
                "metadata": metadata,
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
                "subjects": [group_subject(group) for group in groups],
            },
        ],
    }


def group_suffix(group: str) -> str:
    """A valid, stable and unique name part for a group, whatever characters its name holds."""
    slug = re.sub(r"[^a-z0-9]+", "-", group.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha256(group.encode()).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else digest


def binding_name(grant: AccessGrant) -> str:
    return f"{ROLE_NAMES[grant.role]}-{group_suffix(grant.group)}"


def group_subject(group: str) -> dict:
    return {"kind": "Group", "apiGroup": RBAC_GROUP, "name": group}


@dataclass
class TeamAccessArgs:
    namespace: str
    grants: list[AccessGrant]
    # The Namespace resource: its deletion deletes the Roles and RoleBindings, so Pulumi does not.
    namespace_resource: pulumi.Resource


class TeamAccess(pulumi.ComponentResource):
    """Roles for the roles the grants use and a RoleBinding per grant; `namespace_access` (None without
    deployers) is what the cluster's owners apply for the deployers' access to the Namespace itself."""

    namespace_access: dict | None

    def __init__(self, name: str, args: TeamAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:access:TeamAccess", name, None, opts)
        labels = hardening.standard_labels("team-access", "access")
        child = pulumi.ResourceOptions(parent=self, deleted_with=args.namespace_resource)

        used = [role for role in AccessRole if any(grant.role is role for grant in args.grants)]
        roles = {
            role: k8s.rbac.v1.Role(
                f"{name}-{role.value}",
                metadata={"name": ROLE_NAMES[role], "namespace": args.namespace, "labels": labels},
                rules=rules(role_permissions(role)),
                opts=child,
            )
            for role in used
        }
        for grant in args.grants:
            k8s.rbac.v1.RoleBinding(
                f"{name}-{grant.role.value}-{group_suffix(grant.group)}",
                metadata={"name": binding_name(grant), "namespace": args.namespace, "labels": labels},
                role_ref={"apiGroup": RBAC_GROUP, "kind": "Role", "name": ROLE_NAMES[grant.role]},
                subjects=[group_subject(grant.group)],
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[roles[grant.role]])),
            )

        deployers = [grant.group for grant in args.grants if grant.role is AccessRole.DEPLOYER]
        self.namespace_access = namespace_access(args.namespace, deployers) if deployers else None
        self.register_outputs({"roles": [ROLE_NAMES[role] for role in used], "namespaceAccess": self.namespace_access})
