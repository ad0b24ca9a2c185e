"""The in-process analyzer harness, the pack's assembly and its entry point (as the Pulumi CLI runs it)."""

from __future__ import annotations

import datetime
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import json_format
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy import policy as policy_sdk

import policies.pack as pack
from policies import pod_security, workload
from tests.policies.conftest import hardened_deployment, run, security_context
from tools import analyzer
from tools.analyzer import PolicyConfigError, analyze, load_policy_config
from tools.engine import RecordedResource

PACK_DIR = Path(pack.__file__).resolve().parent
CONFIG_DIR = PACK_DIR / "config"


def privileged_deployment() -> dict:
    obj = hardened_deployment()
    security_context(obj)["privileged"] = True
    return obj


def levels(findings) -> dict[str, str]:
    return {f.policy: f.enforcement for f in findings}


# --- enforcement levels from pack config ---------------------------------------------------------------------


def test_without_config_every_policy_is_mandatory_like_the_pack():
    assert levels(run([privileged_deployment()])) == {"pss-baseline-privileged": "mandatory"}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"all": "advisory"}, {"pss-baseline-privileged": "advisory"}),
        ({"all": "advisory", "pss-baseline-privileged": "mandatory"}, {"pss-baseline-privileged": "mandatory"}),
        ({"pss-baseline-privileged": {"enforcementLevel": "advisory"}}, {"pss-baseline-privileged": "advisory"}),
        ({"pss-baseline-privileged": "disabled"}, {}),
        ({"all": "disabled"}, {}),
        # The SDK reports a remediate-level violation that was not remediated as mandatory.
        ({"pss-baseline-privileged": "remediate"}, {"pss-baseline-privileged": "mandatory"}),
    ],
)
def test_enforcement_levels_come_from_the_pack_config(config, expected):
    assert levels(run([privileged_deployment()], policy_config=config)) == expected


def test_the_local_config_is_advisory_and_staging_mandatory():
    obj = privileged_deployment()
    assert levels(run([obj], policy_config=load_policy_config(CONFIG_DIR / "local.json"))) == {"pss-baseline-privileged": "advisory"}
    assert levels(run([obj], policy_config=load_policy_config(CONFIG_DIR / "staging.json"))) == {"pss-baseline-privileged": "mandatory"}


@pytest.mark.parametrize("name", ["local.json", "staging.json", "prod.json"])
def test_each_stack_config_is_valid_and_names_only_real_policies(name):
    config = load_policy_config(CONFIG_DIR / name)
    analyzer.build_servicer(policy_config=config)  # raises on a schema mismatch
    assert analyzer.unknown_policy_names(config) == []


# --- the pack config file -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{", "not valid JSON at line 1"),
        ('["all"]', 'expected a JSON object like {"all": "mandatory"}'),
        ('{"all": "strict"}', "all is 'strict'; use one of advisory, mandatory, remediate, disabled"),
        ('{"x": {"enforcementLevel": "loud"}}', "x.enforcementLevel is 'loud'"),
        ('{"x": 3}', "x is 3; use one of"),
    ],
)
def test_a_bad_config_file_is_a_clear_error_naming_the_file(tmp_path, content, error):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(PolicyConfigError) as raised:
        load_policy_config(path)
    assert str(raised.value).startswith(f"{path}: ") and error in str(raised.value)


def test_a_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyConfigError, match="nope.json: cannot read the policy pack config"):
        load_policy_config(tmp_path / "nope.json")


def test_an_empty_config_file_means_no_config(tmp_path):
    (tmp_path / "empty.json").write_text("  \n")
    assert load_policy_config(tmp_path / "empty.json") == {}


def test_config_properties_are_validated_against_the_policy_schema_like_the_cli_does():
    with pytest.raises(PolicyConfigError, match="workload-image-pinned: 'yes' is not of type 'boolean'"):
        run([hardened_deployment()], policy_config={"workload-image-pinned": {"requireDigest": "yes"}})


def test_unknown_policy_names_are_found():
    assert analyzer.unknown_policy_names({"all": "advisory", "pss-basline-privileged": "disabled"}) == ["pss-basline-privileged"]


# --- requests as the engine sends them ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "kind", "token"),
    [
        ("v1", "Pod", "kubernetes:core/v1:Pod"),
        ("apps/v1", "Deployment", "kubernetes:apps/v1:Deployment"),
        ("networking.k8s.io/v1", "Ingress", "kubernetes:networking.k8s.io/v1:Ingress"),
        ("postgresql.cnpg.io/v1", "Cluster", "kubernetes:postgresql.cnpg.io/v1:Cluster"),
    ],
)
def test_manifests_get_the_type_tokens_of_pulumi_kubernetes(api_version, kind, token):
    assert analyzer.resource_type({"apiVersion": api_version, "kind": kind}) == token


def test_manifest_names_follow_yaml_config_file():
    assert analyzer.manifest_name({"metadata": {"name": "web", "namespace": "shop"}}, 0) == "shop/web"
    assert analyzer.manifest_name({"metadata": {"name": "web"}}, 0) == "web"
    assert analyzer.manifest_name({"metadata": {"generateName": "job-"}}, 3) == "job-"
    assert analyzer.manifest_name({}, 3) == "object-3"


def test_values_are_turned_into_the_wire_form():
    wire = analyzer.to_wire({1: (Unknown(), datetime.date(2024, 5, 1)), "b": {"c": None}})
    assert wire == {"1": [UNKNOWN, "2024-05-01"], "b": {"c": None}}


def test_a_finding_carries_the_resource_and_only_the_policys_own_message():
    [finding] = run([privileged_deployment()])
    assert finding.urn == "urn:pulumi:manifests::check::kubernetes:apps/v1:Deployment::shop/web"
    assert (finding.name, finding.type) == ("shop/web", "kubernetes:apps/v1:Deployment")
    assert finding.message.startswith('spec.template.spec.containers[0] (container "web").securityContext.privileged')


def test_stack_policies_see_every_resource_with_parents_once():
    seen = []

    def validate(args, report_violation):
        seen.append([(r.name, r.parent.name if r.parent else None) for r in args.resources])
        report_violation("a child is bad", args.resources[1].urn)

    stack_policy = StackValidationPolicy(name="test-stack", description="Test stack policy.", validate=validate)
    parent = RecordedResource(urn="urn:pulumi:s::p::platform:x:App::app", type="platform:x:App", name="app", inputs={}, custom=False)
    child = RecordedResource(urn="urn:pulumi:s::p::kubernetes:core/v1:ConfigMap::cm", type="kubernetes:core/v1:ConfigMap",
                             name="cm", inputs={"kind": "ConfigMap"}, parent=parent.urn)
    findings = analyze([parent, child], policies=[stack_policy])
    assert seen == [[("app", None), ("cm", "app")]]
    assert [(f.policy, f.name, f.message) for f in findings] == [("test-stack", "cm", "a child is bad")]
    assert analyze([parent, child], policies=[stack_policy], stack_policies=False) == []


def test_resource_policies_see_the_provider_and_options():
    seen = []

    def validate(args, report_violation):
        if args.provider is None:
            return  # the provider resource itself
        seen.append((args.provider.resource_type, args.provider.props["namespace"], args.opts.protect, args.opts.parent))

    policy = ResourceValidationPolicy(name="test-provider", description="Test provider policy.", validate=validate)
    provider = RecordedResource(urn="urn:pulumi:s::p::pulumi:providers:kubernetes::k8s", type="pulumi:providers:kubernetes",
                                name="k8s", inputs={"namespace": "shop"})
    resource = RecordedResource(urn="urn:pulumi:s::p::kubernetes:core/v1:ConfigMap::cm", type="kubernetes:core/v1:ConfigMap",
                                name="cm", inputs={}, provider=f"{provider.urn}::k8s-id", protect=True, parent="urn:parent")
    analyze([provider, resource], policies=[policy], stack_policies=False)
    assert seen == [("pulumi:providers:kubernetes", "shop", True, "urn:parent")]


def test_every_policy_gets_its_own_copy_of_the_properties():
    """The harness converts each request's properties once; a policy writing into them must not affect the next."""

    def scribble(args, report_violation):
        args.props["metadata"]["name"] = "changed"

    def read(args, report_violation):
        report_violation(args.props["metadata"]["name"])

    policies = [
        ResourceValidationPolicy(name="test-scribble", description="Writes.", validate=scribble),
        ResourceValidationPolicy(name="test-read", description="Reads.", validate=read),
    ]
    assert [f.message for f in run([hardened_deployment()], policies=policies)] == ["web"]
    assert policy_sdk.json_format is json_format  # the SDK is left as it was found


# --- the pack and its entry point ---------------------------------------------------------------------------


def test_the_pack_holds_every_module_and_unique_names():
    names = [policy.name for policy in pack.ALL_POLICIES]
    assert len(names) == len(set(names))
    for module in (pod_security, workload, pack.secrets, pack.stack_rules):
        assert all(policy in pack.ALL_POLICIES for policy in module.POLICIES)
    assert pack.PACK_NAME == "platform-policies" and pack.DEFAULT_ENFORCEMENT == EnforcementLevel.MANDATORY


def test_every_policy_description_is_a_sentence_and_no_policy_is_called_all():
    for policy in pack.ALL_POLICIES:
        assert policy.name != "all" and policy.description.endswith("."), policy.name


class RecordingPolicyPack:
    """Stands in for PolicyPack, whose constructor starts a gRPC server and blocks forever."""

    calls: list[dict] = []

    def __init__(self, **kwargs):
        RecordingPolicyPack.calls.append(kwargs)


def test_main_builds_the_pack_the_way_the_cli_runs_it(monkeypatch):
    import pulumi_policy

    monkeypatch.setattr(pulumi_policy, "PolicyPack", RecordingPolicyPack)
    monkeypatch.setattr(sys, "path", list(sys.path))  # __main__ edits sys.path; restore it afterwards
    RecordingPolicyPack.calls.clear()
    runpy.run_path(str(PACK_DIR), run_name="__main__")  # what `python -m pulumi.policy ADDRESS policies` does
    [call] = RecordingPolicyPack.calls
    assert call["name"] == "platform-policies"
    assert call["enforcement_level"] == EnforcementLevel.MANDATORY
    assert call["policies"] is pack.ALL_POLICIES
    assert str(PACK_DIR) not in sys.path


RUN_LIKE_THE_CLI = """
import json, runpy, sys
import pulumi_policy
calls = []
pulumi_policy.PolicyPack = lambda **kwargs: calls.append(kwargs)
runpy.run_path(sys.argv[1], run_name="__main__")
import secrets
print(json.dumps({"policies": len(calls[0]["policies"]), "secrets_module": secrets.__file__}))
"""


def test_main_runs_from_inside_the_pack_directory_without_shadowing_the_standard_library():
    """The CLI starts the pack with its directory as working directory and first on sys.path."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_LIKE_THE_CLI, str(PACK_DIR)],
        cwd=PACK_DIR, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["policies"] == len(pack.ALL_POLICIES)
    assert not report["secrets_module"].startswith(str(PACK_DIR))  # the stdlib's secrets, not policies/secrets.py


def test_policy_pack_yaml_declares_a_python_pack_with_its_own_virtualenv():
    import yaml

    document = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert document["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    assert analyzer.pack_version() == document["version"]
