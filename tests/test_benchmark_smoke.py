"""The scaling benchmark's pieces at a tiny size (no timing assertions), and the analyzer's fast paths against the
policy SDK's own, unpatched path (the benchmark's figures are only worth something if the findings are the same)."""

from __future__ import annotations

import copy
import json

import pytest

from benchmarks import scaling
from tools import analyzer, engine, preview


def test_synthetic_config_replicates_services_and_databases():
    config, secret_keys = scaling.synthetic_config(12)
    services = json.loads(config["platform:services"])
    databases = json.loads(config["platform:databases"])
    assert len(services) == 12 and len({s["name"] for s in services}) == 12
    assert [s["calls"] for s in services[:3]] == [[], [services[0]["name"]], [services[1]["name"]]]
    assert len(databases) == scaling.expected_databases(12) == 2
    assert [d["usedBy"] for d in databases] == [[services[0]["name"]], [services[10]["name"]]]
    local, local_secret_keys = engine.stack_config("local")
    assert set(config) == set(local) and secret_keys == local_secret_keys  # every other key as the stack has it


def test_the_benchmark_writes_one_object_per_size(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert scaling.main(["--sizes", "2", "--out", str(out), "--no-checkov"]) == 0
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert set(scaling.KEYS) <= set(row)
    assert row["services"] == row["rendered_services"] == 2
    assert row["rendered_databases"] == scaling.expected_databases(2) == 1
    assert row["resources"] == row["bare_resources"] > row["kubernetes_objects"] > 0  # the same registrations
    assert row["checkov_s"] is None
    for key in ("bare_sdk_s", "preview_s", "preview_full_s", "check_s", "peak_rss_mib"):
        assert isinstance(row[key], float) and row[key] > 0
    assert row["deployable"] and row["schema_errors"] == 0
    printed = capsys.readouterr().out
    assert "machine:" in printed and "full/bare" in printed


# --- the analyzer's shortcuts give the SDK's findings ------------------------------------------------------------


def _sdk_findings(resources: list[engine.RecordedResource], policy_config: dict) -> list[analyzer.Finding]:
    """Every policy on every resource through the servicer as the SDK ships it: no shared copies, no skipping."""
    servicer = analyzer.build_servicer(None, policy_config)
    by_urn = {r.urn: r for r in resources}
    findings = []
    for resource in resources:
        response = servicer.Analyze(analyzer._analyze_request(resource, by_urn), None)
        findings += [analyzer._finding(d, resource) for d in response.diagnostics]
    response = servicer.AnalyzeStack(analyzer._stack_request(resources, by_urn), None)
    findings += [analyzer._finding(d, by_urn.get(d.urn)) for d in response.diagnostics]
    return findings


def _variant(resource: engine.RecordedResource, suffix: str, change) -> engine.RecordedResource:
    inputs = copy.deepcopy(resource.inputs)
    change(inputs)
    return engine.RecordedResource(
        urn=resource.urn + suffix, type=resource.type, name=resource.name + suffix, inputs=inputs, parent=resource.parent,
        provider=resource.provider, protect=False, additional_secret_outputs=[],
    )  # fmt: skip


def _bad_stack(rendering: engine.Rendering) -> list[engine.RecordedResource]:
    """The stack plus objects that break most rules, and without its default-deny NetworkPolicy."""
    resources = [r for r in rendering.resources if "default-deny" not in r.name]
    first = {}
    for r in resources:
        first.setdefault(r.type, r)

    def bad_pod(inputs):
        container = inputs["spec"]["template"]["spec"]["containers"][0]
        container["securityContext"] = {"privileged": True, "runAsUser": 0.0}
        container["image"] = "nginx:latest"
        container["env"] = [{"name": "DB_PASSWORD", "value": "Hunter2-very-Secret-99"}]
        inputs["spec"]["template"]["spec"]["hostNetwork"] = True
        inputs["metadata"]["namespace"] = "default"

    def secret_in_configmap(inputs):
        inputs["data"] = {"API_TOKEN": "ghp_0123456789abcdefABCDEF0123456789abcd", "settings": "password = x7Yq2LmN9pQ4\n"}

    def literal_secret(inputs):
        inputs["stringData"] = {"password": "plain-text-Password-1"}

    def exposed(inputs):
        inputs["spec"]["type"] = "LoadBalancer"

    def one_instance(inputs):
        inputs["spec"]["instances"] = 1.0
        inputs["spec"].pop("plugins", None)

    changes = {
        "kubernetes:apps/v1:Deployment": bad_pod,
        "kubernetes:core/v1:ConfigMap": secret_in_configmap,
        "kubernetes:core/v1:Secret": literal_secret,
        "kubernetes:core/v1:Service": exposed,
        "kubernetes:postgresql.cnpg.io/v1:Cluster": one_instance,
    }
    return resources + [_variant(first[t], "-bad", change) for t, change in changes.items() if t in first]


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_fast_analysis_finds_exactly_what_the_sdk_finds(rendered, stack):
    resources = _bad_stack(rendered[stack])
    config = analyzer.load_policy_config(preview.default_policy_config(stack))
    expected = _sdk_findings(resources, config)
    assert len({f.policy for f in expected}) >= 10  # the bad objects do break many rules
    assert analyzer.analyze(resources, policy_config=config) == expected


def test_fast_check_of_plain_objects_finds_what_the_sdk_finds(rendered):
    objects = [preview.manifest(r) for r in _bad_stack(rendered["prod"]) if r.is_kubernetes_object]
    manifests = analyzer.manifest_resources(objects)
    by_urn = {r.urn: r for r in manifests}
    servicer = analyzer.build_servicer(None, {"all": "mandatory"})
    expected = [
        analyzer._finding(d, r) for r in manifests for d in servicer.Analyze(analyzer._analyze_request(r, by_urn), None).diagnostics
    ]
    assert expected
    assert analyzer.analyze_manifests(objects, policy_config={"all": "mandatory"}) == expected
