"""TeamAccess and the `access` config: what each grant renders, that the roles keep Secrets and pod templates out of
people's reach, that the deployer holds exactly what `pulumi up` of the shipped stacks needs, and that all of it is
schema-valid and clean under the pack."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

import stack_config
from components.config_base import CamelModel
from components.team_access import PLATFORM_KINDS, ROLE_NAMES, TeamAccess, TeamAccessArgs, binding_name
from components.team_access_config import AccessGrant, AccessGrants, AccessRole
from policies import rbac
from policies.pack import ALL_POLICIES
from tests.helpers import by_kind, register
from tools import engine, schemas
from tools.analyzer import analyze, analyze_manifests

RBAC = "rbac.authorization.k8s.io"
# The whole pack, the RBAC rules included whether or not policies/pack.py registers them yet.
PACK = ALL_POLICIES + [policy for policy in rbac.POLICIES if policy not in ALL_POLICIES]
CRD_DIR = Path(__file__).resolve().parents[1] / "tools" / "crds"
BUILTIN_GROUPS = {"", "apps", "autoscaling", "batch", "policy", "networking.k8s.io", RBAC}
GRANTS = [
    AccessGrant(group="payments-viewers", role="view"),
    AccessGrant(group="payments-oncall", role="edit"),
    AccessGrant(group="oidc:payments-ci", role="deployer"),
    AccessGrant(group="release-bots", role="deployer"),
]

# What pulumi-kubernetes v4 sends for an object it manages, with server-side apply (its default): get (refresh,
# the live object around every change), list + watch (informers awaiting readiness and deletion), create (an
# apply PATCH that creates is also authorized as create), patch (apply), delete. Read in provider/pkg/await/
# await.go (Creation, Read, Update, Deletion), condition/source.go, condition/deleted.go and the API server's
# endpoints/handlers/patch.go (createAuthorizerAttributes); seen in the audit log of a real preview, up, refresh
# and destroy by the deployer group (README, "Team access"). Written out here, not imported, so that the
# component's own list is checked against it.
PROVIDER_VERBS = {"get", "list", "watch", "create", "patch", "delete"}
# What its await logic lists and watches besides the managed objects: deployment.go (replicasets, pods,
# persistentvolumeclaims), job.go (pods), service.go (endpoints), the event aggregator of await.go (events).
AWAIT_READS = {(group, resource, verb) for group, resource in [("", "pods"), ("apps", "replicasets"), ("", "persistentvolumeclaims"), ("", "endpoints"), ("", "events")] for verb in ("list", "watch")}  # fmt: skip
# Kinds the program creates that no shipped stack renders yet, and the config that makes them.
NOT_RENDERED_BY_SHIPPED_STACKS = {
    "Ingress": "ingress.mode: ingress (the shipped stacks use gateway)",
}
# Whoever holds these can read a Secret: in its data, from a process's environment, or by running a pod that mounts it.
SECRET_READING = {
    ("", "secrets", verb) for verb in ("get", "list", "watch")
} | {("", subresource, verb) for subresource in ("pods/exec", "pods/attach", "pods/portforward") for verb in ("get", "create")}
POD_TEMPLATE_WRITES = {
    (group, resource, verb)
    for group, resource in [("", "pods"), ("apps", "deployments"), ("batch", "jobs"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "cronjobs")]
    for verb in ("create", "update", "patch")
}


def permissions(role: dict) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every combination a Role's rules grant, ignoring resourceNames."""
    return {
        (group, resource, verb)
        for rule in role.get("rules", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def named(objects: list[dict], name: str) -> dict:
    (obj,) = [obj for obj in objects if obj["metadata"]["name"] == name]
    return obj


def group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


# --- config ---------------------------------------------------------------------------------------------------


class AccessOnly(CamelModel):
    """The `access` key alone, validated as StackConfig validates it."""

    access: AccessGrants


def config_problems(access) -> list[str]:
    """What `pulumi up` would print for this `access` value."""
    try:
        AccessOnly.model_validate({"access": access})
    except ValidationError as errors:
        return [stack_config._describe(error, "platform", "prod") for error in errors.errors()]
    return []


def test_grants_load_from_stack_config_values():
    grants = AccessOnly.model_validate({"access": [{"group": "payments", "role": "edit"}, {"group": "payments", "role": "view"}]}).access
    assert [(grant.group, grant.role) for grant in grants] == [("payments", AccessRole.EDIT), ("payments", AccessRole.VIEW)]


def test_an_unknown_role_names_the_three_roles():
    (problem,) = config_problems([{"group": "payments", "role": "admin"}])
    assert problem.startswith("platform:access[0].role: unknown role; use one of: view (")
    assert all(f"{role.value} (" in problem for role in AccessRole)
    assert problem.endswith("(got 'admin')")


def test_the_same_grant_twice_is_refused():
    (problem,) = config_problems([{"group": "ops", "role": "edit"}, {"group": "ci", "role": "deployer"}, {"group": "ops", "role": "edit"}])
    assert problem == "platform:access: group 'ops' is granted 'edit' twice (access[0] and access[2]); remove one"


@pytest.mark.parametrize(
    ("group", "fragment"),
    [
        ("system:authenticated", "'system:' groups are Kubernetes' own"),
        (" payments", "leading or trailing whitespace"),
        ("", "at least 1 character"),
    ],
)
def test_groups_must_be_identity_provider_groups(group, fragment):
    (problem,) = config_problems([{"group": group, "role": "view"}])
    assert problem.startswith("platform:access[0].group: ") and fragment in problem


def test_unknown_keys_in_a_grant_are_refused():
    (problem,) = config_problems([{"group": "ops", "role": "view", "namespace": "other"}])
    assert problem.startswith("platform:access[0].namespace: unknown key")


# --- what the component renders -------------------------------------------------------------------------------


def make_team_access(namespace: str, grants: list[AccessGrant]) -> TeamAccess:
    """The component as a stack makes it: after its Namespace, deleted with it."""
    namespace_resource = k8s.core.v1.Namespace("namespace", metadata={"name": namespace})
    return TeamAccess("access", TeamAccessArgs(namespace, grants, namespace_resource), pulumi.ResourceOptions(depends_on=[namespace_resource]))


def register_access(namespace: str, grants: list[AccessGrant]) -> list[engine.RecordedResource]:
    return [r for r in register(lambda: make_team_access(namespace, grants)) if r.inputs.get("kind") != "Namespace"]


@pytest.fixture(scope="module")
def access():
    return register_access("shop", GRANTS)


@pytest.fixture(scope="module")
def roles(access) -> dict[str, dict]:
    return {role["metadata"]["name"]: role for role in by_kind(access, "Role")}


def test_one_role_per_role_used_in_the_namespace(roles):
    assert set(roles) == {"access-view", "access-edit", "access-deployer"}
    assert {role["metadata"]["namespace"] for role in roles.values()} == {"shop"}
    viewers_only = register_access("shop", [AccessGrant(group="auditors", role="view")])
    assert [role["metadata"]["name"] for role in by_kind(viewers_only, "Role")] == ["access-view"]


def test_one_binding_per_grant_to_its_group(access):
    bindings = by_kind(access, "RoleBinding")
    assert sorted((b["subjects"][0]["name"], b["roleRef"]["name"]) for b in bindings) == sorted(
        (grant.group, ROLE_NAMES[grant.role]) for grant in GRANTS
    )
    for binding in bindings:
        assert binding["metadata"]["namespace"] == "shop"
        assert binding["subjects"] == [{"kind": "Group", "apiGroup": RBAC, "name": binding["subjects"][0]["name"]}]
        assert binding["roleRef"]["kind"] == "Role" and binding["roleRef"]["apiGroup"] == RBAC


def test_deployers_namespace_access_is_rendered_for_the_cluster_owners_not_applied():
    made: list[TeamAccess] = []
    resources = register(lambda: made.append(make_team_access("shop", GRANTS)))
    register(lambda: made.append(make_team_access("shop", [AccessGrant(group="auditors", role="view")])))
    assert not [r for r in resources if r.inputs.get("kind") in ("ClusterRole", "ClusterRoleBinding")]
    listing, without_deployers = made[0].namespace_access, made[1].namespace_access
    assert without_deployers is None
    assert (listing["apiVersion"], listing["kind"]) == ("v1", "List")
    cluster_role, binding = listing["items"]
    own = "shop-namespace-deployer"
    assert cluster_role["metadata"]["name"] == own and binding["metadata"]["name"] == own
    assert binding["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole", "name": own}
    assert binding["subjects"] == [{"kind": "Group", "apiGroup": RBAC, "name": group} for group in ("oidc:payments-ci", "release-bots")]
    assert cluster_role["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["shop"], "verbs": ["get", "patch", "delete"]},
        # The provider's deletion await lists and watches every Namespace; what it sees is names and labels.
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    assert schemas.validate_all(listing["items"]) == []
    assert analyze_manifests(listing["items"], policies=PACK) == []


def test_binding_names_are_valid_and_distinct_whatever_the_group_is_called():
    groups = ["Payments Team", "payments-team", "payments_team", "🙂", "x" * 200]
    names = {binding_name(AccessGrant(group=group, role="view")) for group in groups}
    assert len(names) == len(groups)
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63 for name in names)


def test_children_are_parented_and_bindings_wait_for_their_role(access):
    (component,) = [r for r in access if r.type == "platform:access:TeamAccess"]
    children = [r for r in access if r is not component]
    assert children and all(r.parent == component.urn for r in children)
    role_urns = {r.inputs["metadata"]["name"]: r.urn for r in children if r.inputs["kind"] == "Role"}
    for binding in (r for r in children if r.inputs["kind"] == "RoleBinding"):
        assert role_urns[binding.inputs["roleRef"]["name"]] in binding.dependencies


def test_the_namespace_deletes_the_rbac_objects_not_pulumi(monkeypatch):
    """On `pulumi destroy` the deployer must not delete its own RoleBinding while it still has objects to delete."""
    deleted_with: dict[str, str] = {}
    make_mocks_and_monitor = engine._make_mocks_and_monitor

    def recording_deleted_with():
        mocks, monitor_class = make_mocks_and_monitor()

        class Monitor(monitor_class):
            def RegisterResource(self, request):
                response = super().RegisterResource(request)
                deleted_with[response.urn] = request.deletedWith
                return response

        return mocks, Monitor

    monkeypatch.setattr(engine, "_make_mocks_and_monitor", recording_deleted_with)
    resources = register(lambda: make_team_access("shop", GRANTS))
    (namespace,) = [r.urn for r in resources if r.inputs.get("kind") == "Namespace"]
    rbac_objects = [r.urn for r in resources if r.inputs.get("kind") in ("Role", "RoleBinding")]
    assert len(rbac_objects) == 3 + len(GRANTS)
    assert {deleted_with[urn] for urn in rbac_objects} == {namespace}


# --- what each role may do ------------------------------------------------------------------------------------


def test_view_reads_every_platform_kind_but_secrets(roles):
    view = permissions(roles["access-view"])
    for kind, (group, plural) in PLATFORM_KINDS.items():
        readable = {(group, plural, verb) for verb in ("get", "list", "watch")}
        assert (readable <= view) == (kind != "Secret"), kind
    assert ("", "pods/log", "get") in view and ("", "pods", "list") in view
    assert {verb for _, _, verb in view} == {"get", "list", "watch"}


def test_edit_is_view_plus_scaling_restarts_and_backups(roles):
    assert permissions(roles["access-edit"]) - permissions(roles["access-view"]) == {
        ("apps", "deployments/scale", "get"),
        ("apps", "deployments/scale", "update"),
        ("apps", "deployments/scale", "patch"),
        ("", "pods", "delete"),
        ("postgresql.cnpg.io", "backups", "create"),
    }


@pytest.mark.parametrize("role", ["access-view", "access-edit"])
def test_people_cannot_reach_a_secret_or_a_pod_template(roles, role):
    granted = permissions(roles[role])
    assert granted & SECRET_READING == set()
    assert granted & POD_TEMPLATE_WRITES == set()


def test_the_deployer_holds_every_permission_it_grants(roles):
    """RBAC refuses to write a Role granting more than its author holds, or a binding to such a Role: the
    deployer must hold all of view, edit and itself, without `escalate` or `bind`."""
    deployer = permissions(roles["access-deployer"])
    for role in roles.values():
        assert permissions(role) <= deployer, role["metadata"]["name"]
    every_verb = {verb for role in roles.values() for rule in role["rules"] for verb in rule["verbs"]}
    assert every_verb.isdisjoint({"escalate", "bind", "impersonate", "deletecollection"})


def test_no_wildcard_and_one_api_group_per_rule(roles):
    for role in roles.values():
        for rule in role["rules"]:
            assert len(rule["apiGroups"]) == 1, rule  # RBAC grants every apiGroup x resource pair of a rule
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule


def test_every_object_is_schema_valid(access):
    objects = [r.inputs for r in access if r.is_kubernetes_object]
    assert len(objects) == 3 + len(GRANTS)
    assert schemas.validate_all(objects) == []


def test_the_pack_is_clean_on_it(access):
    assert analyze(access, policies=PACK) == []


# --- the deployer against what the shipped stacks render ------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(kind for kind, (group, _) in PLATFORM_KINDS.items() if group not in BUILTIN_GROUPS))
def test_custom_kinds_match_their_crds(kind):
    group, plural = PLATFORM_KINDS[kind]
    path = CRD_DIR / group / f"{plural}.json"
    assert path.is_file(), f"{kind}: no CRD {group}/{plural} in tools/crds (a wrong plural, or a CRD to add)"
    definition = json.loads(path.read_text())
    assert (definition["group"], definition["kind"], definition["plural"], definition["scope"]) == (group, kind, plural, "Namespaced")


def deployer_for(namespace: str) -> tuple[list[engine.RecordedResource], dict]:
    resources = register_access(namespace, [AccessGrant(group="ci", role="deployer")])
    return resources, named(by_kind(resources, "Role"), "access-deployer")


def namespaced_kinds(rendering: engine.Rendering, namespace: str) -> dict[str, str]:
    """kind -> apiVersion of every object the stack puts in its namespace."""
    return {
        obj["kind"]: obj["apiVersion"]
        for obj in rendering.kubernetes_objects()
        if (obj.get("metadata") or {}).get("namespace") == namespace
    }


def test_the_deployer_may_do_what_pulumi_up_does_to_every_kind_a_stack_creates(stack_rendering):
    namespace = stack_rendering.outputs["namespace"]
    access_resources, deployer = deployer_for(namespace)
    created = {**namespaced_kinds(stack_rendering, namespace), **{obj["kind"]: obj["apiVersion"] for obj in by_kind(access_resources, "Role")}}
    granted: dict[tuple[str, str], set[str]] = defaultdict(set)
    for group, resource, verb in permissions(deployer):
        granted[(group, resource)].add(verb)
    for kind, api_version in sorted(created.items()):
        assert kind in PLATFORM_KINDS, (
            f"Pulumi.{stack_rendering.stack}.yaml renders {api_version} {kind} in the namespace, which PLATFORM_KINDS in "
            "components/team_access.py lacks: add it as (apiGroup, plural) so the deployer may manage it"
        )
        group, plural = PLATFORM_KINDS[kind]
        assert group == group_of(api_version), kind
        assert granted[(group, plural)] == PROVIDER_VERBS, kind


def test_the_deployer_holds_nothing_more(rendered):
    """Exactly: the provider's verbs on the table's kinds, its await reads, and what the people's roles hold (see
    test_the_deployer_holds_every_permission_it_grants). Every kind in the table is one a stack renders, or one the
    program creates under config the shipped stacks do not set."""
    access_resources, deployer = deployer_for("platform")
    people = {role["metadata"]["name"]: permissions(role) for role in by_kind(register_access("platform", GRANTS), "Role")}
    table = {(group, plural, verb) for group, plural in PLATFORM_KINDS.values() for verb in PROVIDER_VERBS}
    assert permissions(deployer) == table | AWAIT_READS | people["access-view"] | people["access-edit"]
    rendered_kinds = {kind for rendering in rendered.values() for kind in namespaced_kinds(rendering, rendering.outputs["namespace"])}
    rendered_kinds |= {obj["kind"] for obj in by_kind(access_resources, "Role") + by_kind(access_resources, "RoleBinding")}
    assert set(PLATFORM_KINDS) - rendered_kinds == set(NOT_RENDERED_BY_SHIPPED_STACKS)


def test_outside_its_namespace_a_stack_makes_only_its_namespace_or_local_add_ons(stack_rendering):
    namespace = stack_rendering.outputs["namespace"]
    by_urn = {resource.urn: resource for resource in stack_rendering.resources}

    def under_addons(resource: engine.RecordedResource) -> bool:
        while resource.parent in by_urn:
            resource = by_urn[resource.parent]
            if resource.type == "platform:addons:ClusterAddons":
                return True
        return False

    outside = [
        resource
        for resource in stack_rendering.resources
        if resource.is_kubernetes_object and (resource.inputs.get("metadata") or {}).get("namespace") != namespace
    ]
    own = [r for r in outside if r.inputs["kind"] == "Namespace" and r.inputs["metadata"]["name"] == namespace]
    assert len(own) == 1
    # The local add-ons (Helm charts, a GatewayClass, the monitoring namespace) need a cluster admin; the deployer
    # identity is for staging and prod, where the cluster's owners install the operators.
    assert all(under_addons(resource) for resource in outside if resource not in own)
