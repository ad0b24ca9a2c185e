"""Readiness contracts (components/readiness.py): every custom resource `pulumi up` creates is awaited by a rule that
reads real status fields of its CRD, or says why it is not awaited."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components import readiness
from tests.helpers import register
from tools import schemas

COMPONENTS = Path(__file__).resolve().parent.parent / "components"
BUILT_IN_GROUPS = re.compile(r"^(v1|(apps|batch|policy|autoscaling|rbac\.authorization\.k8s\.io|networking\.k8s\.io)/v\w+)$")


def status_schema(api_version: str, kind: str) -> dict:
    crd = schemas._crd_schemas().get((api_version, kind))
    assert crd is not None, f"no CRD schema for {kind} {api_version} in tools/crds"
    return crd["properties"].get("status", {})


def field_at(schema: dict, path: list[str]) -> dict | None:
    """The schema node at a path of property names ('[]' steps into array items), None when undeclared."""
    node = schema
    for step in path:
        if step == "[]":
            node = node.get("items")
        else:
            node = node.get("properties", {}).get(step)
        if node is None:
            return None
    return node


def fields_read(rule: str) -> list[list[str]]:
    """The status paths a waitFor rule reads, relative to `.status` ('[]' for an array step)."""
    if rule.startswith("condition="):
        return [["conditions", "[]", "type"], ["conditions", "[]", "status"]]
    match = re.fullmatch(r"jsonpath=\{\.status((?:\.\w+|\[[^\]]*\])*)\}(=.+)?", rule)
    assert match, f"{rule!r} does not read a .status field in kubectl's strict JSONPath syntax"
    path: list[str] = []
    paths = [path]
    for name, bracket in re.findall(r"\.(\w+)|\[([^\]]*)\]", match.group(1)):
        if name:
            path.append(name)
            continue
        path.append("[]")
        for field in re.findall(r"@\.(\w+)", bracket):  # a filter reads a field of the items
            paths.append([*path, field])
    return paths


AWAITED = {key: entry for key, entry in readiness.CONTRACTS.items() if entry.wait_for is not None}
EXAMPLE_SPEC = {"instances": 2}


@pytest.mark.parametrize("api_version,kind", sorted(AWAITED), ids=lambda value: str(value))
def test_every_field_a_rule_reads_is_in_the_crd_status_schema(api_version, kind):
    entry = AWAITED[(api_version, kind)]
    status = status_schema(api_version, kind)
    assert entry.timeout_seconds > 0
    for rule in entry.rules(EXAMPLE_SPEC):
        for path in fields_read(rule):
            assert field_at(status, path) is not None, f"{kind}: {rule} reads status.{'.'.join(path)}, not in its CRD"


def test_fields_read_finds_an_undeclared_field():
    status = status_schema("postgresql.cnpg.io/v1", "Pooler")
    assert field_at(status, fields_read("jsonpath={.status.instances}=3")[0]) is not None
    assert field_at(status, fields_read("jsonpath={.status.readyInstances}=3")[0]) is None
    assert field_at(status, fields_read("condition=Ready")[0]) is None  # a Pooler has no conditions
    filtered = fields_read('jsonpath={.status.parents[0].conditions[?(@.type=="Accepted")].status}=True')
    route = status_schema("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert [field_at(route, path) is not None for path in filtered] == [True, True]
    assert field_at(route, ["parents", "[]", "conditions", "[]", "reason2"]) is None


def test_a_kind_not_awaited_says_why():
    for (api_version, kind), entry in readiness.CONTRACTS.items():
        assert entry.wait_for is not None or len(entry.not_awaited) > 20, f"{kind}: no waitFor and no reason"
        assert not (entry.wait_for is not None and entry.not_awaited), f"{kind}: awaited and not awaited"


def test_rules_use_the_forms_the_pinned_provider_reads():
    for (api_version, kind), entry in AWAITED.items():
        value = readiness.annotations(api_version, kind, EXAMPLE_SPEC)[readiness.WAIT_FOR_ANNOTATION]
        rules = json.loads(value) if value.startswith("[") else [value]
        assert rules and all(rule.startswith(("condition=", "jsonpath=")) for rule in rules), value


def test_the_pooler_waits_for_as_many_pods_as_it_asks_for():
    rules = readiness.CONTRACTS[("postgresql.cnpg.io/v1", "Pooler")].rules({"instances": 3})
    assert "jsonpath={.status.instances}=3" in rules and "jsonpath={.status.phase}=active" in rules


def test_a_kind_without_a_contract_cannot_be_rendered():
    def program():
        readiness.custom_resource("x", api_version="example.com/v1", kind="Widget", metadata={"name": "x"}, spec={})

    with pytest.raises(Exception, match="Widget .* has no readiness contract: add it to components/readiness.py"):
        register(program)


def test_components_create_custom_resources_only_through_the_contracts():
    direct = [
        f"{path.name}:{number}"
        for path in sorted(COMPONENTS.glob("*.py"))
        if path.name != "readiness.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"apiextensions\.CustomResource\(", line)
    ]
    assert not direct, f"custom resources created around components/readiness.py: {direct}"


def test_every_rendered_custom_resource_carries_its_contract(stack_rendering):
    kinds = set()
    for obj in stack_rendering.kubernetes_objects():
        api_version, kind = obj["apiVersion"], obj["kind"]
        if BUILT_IN_GROUPS.match(api_version):
            continue
        kinds.add(kind)
        entry = readiness.contract(api_version, kind)  # raises for a kind without an entry
        annotations = obj["metadata"].get("annotations", {})
        expected = readiness.annotations(api_version, kind, obj["spec"])
        keys = (readiness.WAIT_FOR_ANNOTATION, readiness.TIMEOUT_ANNOTATION, readiness.DELETION_ANNOTATION)
        assert {k: annotations.get(k) for k in keys} == {k: expected.get(k) for k in keys}, f"{kind} {obj['metadata']['name']}"
        assert entry.wait_for is None or expected
    assert {"Cluster", "Certificate"} <= kinds


def test_the_pooler_is_deleted_in_the_background_and_nothing_else_changes_the_providers_default():
    """CloudNativePG recreates a deleting Pooler's Deployment, so a foreground delete never ends (make e2e found it)."""
    pooler = readiness.annotations("postgresql.cnpg.io/v1", "Pooler", {"instances": 2})
    assert pooler[readiness.DELETION_ANNOTATION] == "background"
    # The values pulumi-kubernetes 4.25 reads (metadata.DeletionPropagation); anything else means its default.
    assert {entry.deletion for entry in readiness.CONTRACTS.values()} <= {"", "background", "orphan"}
    assert readiness.DELETION_ANNOTATION not in readiness.annotations("postgresql.cnpg.io/v1", "Cluster", {})
