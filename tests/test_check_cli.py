"""tools/check: the policy pack over plain YAML. In-process through main(argv), plus one real subprocess run."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policies.pack import ALL_POLICIES
from tools import kube_yaml
from tools.check import main

REPO = Path(__file__).resolve().parents[1]

HARDENED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "web",
                "image": "ghcr.io/example/web:1.4.2",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    },
}
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"}, "data": {"MODE": "fast"}}


def hardened_pod(name: str = "web") -> dict:
    pod = copy.deepcopy(HARDENED_POD)
    pod["metadata"]["name"] = name
    return pod


def privileged_pod() -> dict:
    pod = hardened_pod("root")
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
    return pod


def restricted_only_pod() -> dict:
    """Breaks only Restricted controls (runAsNonRoot, seccomp) and workload rules, nothing of Baseline."""
    pod = hardened_pod("loose")
    del pod["spec"]["securityContext"]
    pod["spec"]["containers"][0]["image"] = "nginx:latest"
    return pod


def write(path: Path, *documents) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def check(*argv) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main([str(arg) for arg in argv], stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


# --- exit codes and text --------------------------------------------------------------------------------------


def test_clean_objects_exit_0_with_a_summary(tmp_path):
    code, out, err = check(write(tmp_path / "ok.yaml", hardened_pod(), CONFIG_MAP))
    assert (code, err) == (0, "")
    assert out == "0 finding(s), 0 mandatory, 0 advisory, in 2 object(s) from 1 file(s)\n"


def test_a_mandatory_violation_exits_1_with_one_line_per_finding(tmp_path):
    path = write(tmp_path / "pods.yaml", hardened_pod(), privileged_pod())
    code, out, _ = check(path)
    assert code == 1
    lines = out.splitlines()
    second_document_line = path.read_text().splitlines().index("---") + 2
    assert lines[0].startswith(
        f"{path}:{second_document_line}: Pod shop/root: [mandatory] pss-baseline-privileged: "
        'spec.containers[0] (container "web").securityContext.privileged is true'
    )
    assert lines[-1] == "1 finding(s), 1 mandatory, 0 advisory, in 2 object(s) from 1 file(s)"


def test_advisory_findings_from_a_pack_config_exit_0(tmp_path):
    path = write(tmp_path / "pods.yaml", privileged_pod())
    code, out, _ = check("--policy-pack-config", REPO / "policies/config/local.json", path)
    assert code == 0
    assert "[advisory] pss-baseline-privileged" in out


# --- formats --------------------------------------------------------------------------------------------------


def test_json_lists_each_finding_with_its_object(tmp_path):
    path = write(tmp_path / "pods.yaml", privileged_pod())
    code, out, _ = check("--format", "json", path)
    assert code == 1
    [finding] = json.loads(out)
    assert finding == {
        "file": str(path),
        "kind": "Pod",
        "namespace": "shop",
        "name": "root",
        "policy": "pss-baseline-privileged",
        "enforcement": "mandatory",
        "message": finding["message"],
    }
    assert finding["message"].startswith('spec.containers[0] (container "web").securityContext.privileged is true')


def test_sarif_has_rules_with_descriptions_and_results_pointing_at_files(tmp_path):
    path = write(tmp_path / "pods.yaml", hardened_pod(), privileged_pod())
    code, out, _ = check("--format", "sarif", path)
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [policy.name for policy in ALL_POLICIES]
    assert all(rule["shortDescription"]["text"] == policy.description for rule, policy in zip(rules, ALL_POLICIES))
    [result] = run["results"]
    assert result["ruleId"] == "pss-baseline-privileged" and result["level"] == "error"
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == path.as_posix()
    assert location["region"]["startLine"] > 1  # the second document
    assert "securityContext.privileged" in result["message"]["text"]


def test_sarif_marks_advisory_findings_as_warnings(tmp_path):
    path = write(tmp_path / "pods.yaml", privileged_pod())
    code, out, _ = check("--format", "sarif", "--policy-pack-config", REPO / "policies/config/local.json", path)
    assert code == 0
    assert [r["level"] for r in json.loads(out)["runs"][0]["results"]] == ["warning"]


# --- input ----------------------------------------------------------------------------------------------------


def test_multi_document_files_skip_empty_documents_and_expand_lists(tmp_path):
    path = tmp_path / "bundle.yaml"
    path.write_text(
        "---\n"
        + yaml.safe_dump(hardened_pod("a"))
        + "---\n---\n"  # an empty document
        + yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [privileged_pod(), CONFIG_MAP]})
    )
    code, out, _ = check("--format", "json", path)
    assert code == 1
    assert [(f["kind"], f["name"]) for f in json.loads(out)] == [("Pod", "root")]
    _, text, _ = check(path)
    assert text.endswith("in 3 object(s) from 1 file(s)\n")


def test_folders_are_searched_recursively_for_yaml_and_yml(tmp_path):
    write(tmp_path / "a.yaml", hardened_pod("a"))
    write(tmp_path / "deep/er/b.yml", privileged_pod())
    (tmp_path / "notes.txt").write_text("not: yaml: at all: [")
    code, out, _ = check("--format", "json", tmp_path)
    assert code == 1
    assert [Path(f["file"]).name for f in json.loads(out)] == ["b.yml"]
    _, text, _ = check(tmp_path)
    assert text.endswith("in 2 object(s) from 2 file(s)\n")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("kind: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "bad.yaml:1: the document is a list, not a Kubernetes object"),
        ("apiVersion: v1\nkind: Pod\n---\nplain text\n", "bad.yaml:4: the document is a str, not a Kubernetes object"),
        ("metadata: {name: x}\n", "bad.yaml:1: not a Kubernetes object: apiVersion and kind missing"),
        ("apiVersion: v1\nkind: List\nitems: [3]\n", "an item is a int, not a Kubernetes object"),
    ],
)
def test_unreadable_input_exits_2_naming_file_and_reason(tmp_path, content, reason):
    (tmp_path / "bad.yaml").write_text(content)
    code, out, err = check(tmp_path / "bad.yaml")
    assert (code, out) == (2, "")
    assert str(tmp_path / "bad.yaml") in err and reason in err
    assert "Traceback" not in err


def test_a_missing_path_exits_2(tmp_path):
    code, _, err = check(tmp_path / "missing.yaml")
    assert code == 2 and f"{tmp_path / 'missing.yaml'}: no such file or folder" in err


def test_a_bad_pack_config_exits_2(tmp_path):
    (tmp_path / "config.json").write_text('{"all": "loud"}')
    code, _, err = check("--policy-pack-config", tmp_path / "config.json", write(tmp_path / "ok.yaml", hardened_pod()))
    assert code == 2 and "config.json: all is 'loud'" in err


def test_a_config_naming_no_policy_gets_a_warning(tmp_path):
    (tmp_path / "config.json").write_text('{"pss-basline-privileged": "disabled"}')
    code, _, err = check("--policy-pack-config", tmp_path / "config.json", write(tmp_path / "ok.yaml", hardened_pod()))
    assert code == 0 and "'pss-basline-privileged' names no policy of the pack" in err


def test_profile_and_pack_config_do_not_mix(tmp_path):
    code, _, err = check("--profile", "baseline", "--policy-pack-config", "x.json", tmp_path)
    assert code == 2 and "drop --policy-pack-config or --profile" in err


def test_a_policy_that_fails_on_an_object_is_reported_without_a_traceback(tmp_path, monkeypatch):
    from pulumi_policy import ResourceValidationPolicy

    def broken(args, report_violation):
        raise KeyError("spec")

    crashing = ResourceValidationPolicy(name="test-broken", description="Crashes.", validate=broken)
    monkeypatch.setattr("tools.check.choose_policies", lambda profile, config: ([crashing], {}))
    code, out, err = check(write(tmp_path / "pod.yaml", hardened_pod()))
    assert (code, out) == (2, "")
    assert "pod.yaml:1: Pod shop/web: a policy failed on it (KeyError: 'spec')" in err and "Traceback" not in err


# --- profiles -------------------------------------------------------------------------------------------------


def test_a_pod_breaking_only_restricted_controls_passes_baseline_and_fails_restricted(tmp_path):
    path = write(tmp_path / "pod.yaml", restricted_only_pod())
    assert check("--profile", "baseline", path)[0] == 0
    code, out, _ = check("--profile", "restricted", "--format", "json", path)
    assert code == 1
    policies = {f["policy"] for f in json.loads(out)}
    assert policies == {"pss-restricted-run-as-non-root", "pss-restricted-seccomp"}  # no workload-* rules
    assert all(f["enforcement"] == "mandatory" for f in json.loads(out))


def test_the_baseline_profile_still_catches_baseline_violations(tmp_path):
    code, out, _ = check("--profile", "baseline", "--format", "json", write(tmp_path / "pod.yaml", privileged_pod()))
    assert code == 1 and [f["policy"] for f in json.loads(out)] == ["pss-baseline-privileged"]


def test_the_default_run_includes_workload_rules(tmp_path):
    code, out, _ = check("--format", "json", write(tmp_path / "pod.yaml", restricted_only_pod()))
    assert code == 1 and "workload-image-pinned" in {f["policy"] for f in json.loads(out)}


# --- a real process -------------------------------------------------------------------------------------------


def test_python_m_tools_check_runs_as_a_program(tmp_path):
    path = write(tmp_path / "pods.yaml", hardened_pod(), privileged_pod())
    result = subprocess.run(
        [sys.executable, "-m", "tools.check", "--format", "json", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1, result.stderr
    assert [f["policy"] for f in json.loads(result.stdout)] == ["pss-baseline-privileged"]


def test_yaml_is_read_as_kubernetes_reads_it(tmp_path):
    # A bare `=` (prometheus-operator's AlertmanagerConfig matchers) is YAML 1.1's 'value' tag, which PyYAML's own
    # loaders cannot construct; the API server and the kubernetes provider's rendered files read the string "=".
    path = tmp_path / "routing.yaml"
    path.write_text(
        "apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\nmetadata: {name: routing, namespace: shop}\n"
        "spec:\n  route:\n    receiver: pager\n    matchers:\n      - name: severity\n        matchType: =\n        value: critical\n"
    )
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load(path.read_text())
    code, out, err = check(path)
    assert (code, err) == (0, "")
    assert "in 1 object(s) from 1 file(s)" in out
    (document,) = kube_yaml.load_all(path.read_text())
    assert document["spec"]["route"]["matchers"][0]["matchType"] == "="
