"""The autoscalers' CRDs in tools/crds (KEDA's ScaledObject and TriggerAuthentication, the VPA): extracted from their
Go modules with tools/crds/extract.py, which also reads the VPA's multi-document file."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

CRD_DIR = Path(__file__).resolve().parents[1] / "tools" / "crds"
SOURCE = (CRD_DIR / "SOURCE.md").read_text()


def _extract_module():
    spec = importlib.util.spec_from_file_location("crd_extract", CRD_DIR / "extract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _crd(group: str, kind: str, plural: str, version: str = "v1") -> str:
    return (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        f"metadata: {{name: {plural}.{group}}}\n"
        f"spec:\n  group: {group}\n  scope: Namespaced\n  names: {{kind: {kind}, plural: {plural}}}\n"
        f"  versions:\n  - name: {version}\n    served: true\n    storage: true\n"
        "    schema: {openAPIV3Schema: {type: object, description: dropped, properties: {spec: {type: object}}}}\n"
        "  - name: v0\n    served: false\n    storage: false\n    schema: {openAPIV3Schema: {type: object}}\n"
    )


def test_extract_reads_every_crd_of_a_multi_document_file(tmp_path):
    text = _crd("autoscaling.k8s.io", "A", "as") + "---\n" + _crd("autoscaling.k8s.io", "B", "bs") + "---\n"
    (tmp_path / "in" / "autoscaling.k8s.io").mkdir(parents=True)
    (tmp_path / "in" / "autoscaling.k8s.io" / "both.yaml").write_text(text)
    assert _extract_module().main([str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    written = {path.name: json.loads(path.read_text()) for path in (tmp_path / "out" / "autoscaling.k8s.io").glob("*.json")}
    assert set(written) == {"as.json", "bs.json"}
    assert written["bs.json"]["kind"] == "B"
    assert written["as.json"]["source_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    # Only served versions, without descriptions.
    assert written["as.json"]["versions"] == {"v1": {"type": "object", "properties": {"spec": {"type": "object"}}}}


def test_extract_refuses_a_file_with_a_document_that_is_no_crd(tmp_path):
    with pytest.raises(ValueError, match="only CustomResourceDefinition"):
        _extract_module().extract_all(_crd("keda.sh", "A", "as") + "---\napiVersion: v1\nkind: ConfigMap\n")


@pytest.mark.parametrize(
    "path, kind, version",
    [
        ("keda.sh/scaledobjects.json", "ScaledObject", "v1alpha1"),
        ("keda.sh/triggerauthentications.json", "TriggerAuthentication", "v1alpha1"),
        ("autoscaling.k8s.io/verticalpodautoscalers.json", "VerticalPodAutoscaler", "v1"),
    ],
)
def test_autoscaler_crds_are_there_with_their_provenance(path, kind, version):
    crd = json.loads((CRD_DIR / path).read_text())
    assert crd["kind"] == kind and version in crd["versions"]
    assert crd["source_sha256"] in SOURCE  # the file it came from is named in SOURCE.md


def test_the_local_add_ons_install_the_versions_the_crds_come_from():
    from components import autoscaling
    from components.addons import KEDA, VPA, ClusterAddons, ClusterAddonsArgs
    from components.addons_config import AddonsConfig
    from tests.helpers import register

    assert f"github.com/kedacore/keda/v2@v{autoscaling.KEDA_VERSION}" in SOURCE
    assert f"k8s.io/autoscaler/vertical-pod-autoscaler@v{autoscaling.VPA_VERSION}" in SOURCE
    assert (KEDA.version, KEDA.app_version) == (autoscaling.KEDA_VERSION, f"v{autoscaling.KEDA_VERSION}")
    assert VPA.app_version == autoscaling.VPA_VERSION
    addons = AddonsConfig(keda=True, vpa=True)
    assert addons.any and not AddonsConfig().any
    holder = {}

    def program():
        holder["addons"] = ClusterAddons("addons", ClusterAddonsArgs(addons=addons, keda_namespace="autoscalers"))

    resources = register(program)
    releases = {r.inputs["name"]: r.inputs for r in resources if r.type == "kubernetes:helm.sh/v3:Release"}
    assert {name: (inputs["chart"], inputs["version"], inputs["namespace"]) for name, inputs in releases.items()} == {
        "keda": ("keda", autoscaling.KEDA_VERSION, "autoscalers"),
        "vpa": ("vertical-pod-autoscaler", autoscaling.VPA_CHART_VERSION, "vpa-system"),
    }
    assert releases["keda"]["repositoryOpts"]["repo"] == "https://kedacore.github.io/charts"
    assert len(holder["addons"].autoscaling_dependencies) == 2


def test_make_e2e_installs_the_vpa_crd_with_the_approval_annotation_its_k8s_io_group_needs():
    from e2e import run

    crds = {crd["metadata"]["name"]: crd for crd in run.crd_objects()}
    vpa = crds["verticalpodautoscalers.autoscaling.k8s.io"]
    assert vpa["metadata"]["annotations"]["api-approved.kubernetes.io"].startswith("https://github.com/kubernetes/kubernetes/pull/")
    assert {"scaledobjects.keda.sh", "triggerauthentications.keda.sh"} <= set(crds)


def test_make_e2e_marks_scaled_objects_ready_as_keda_would_since_no_keda_runs_there():
    """The ScaledObject's readiness contract awaits Ready; without a stand-in `pulumi up` of staging and prod would
    time out under make e2e. The VPA and the TriggerAuthentication are not awaited (components/readiness.py)."""
    from components import readiness
    from e2e import operators
    from tests.test_e2e_operators import FakeKube, awaited_object

    assert readiness.contract("keda.sh/v1alpha1", "ScaledObject").rules({}) == ["condition=Ready"]
    assert not readiness.contract("autoscaling.k8s.io/v1", "VerticalPodAutoscaler").rules({})
    [stand_in] = [s for s in operators.CONDITION_STAND_INS if s.kind == "ScaledObject"]
    scaled = awaited_object("ScaledObject", {}, {"conditions": [{"type": "Ready", "status": "Unknown"}]}, "keda.sh/v1alpha1")
    kube = FakeKube({"ScaledObject": [scaled]})
    operators.StandIns(kube, "platform", [stand_in])._write(stand_in)
    [(path, body)] = kube.patches
    assert path == "/ScaledObject/scaledobject/status"
    assert [(c["type"], c["status"], c["reason"]) for c in body["status"]["conditions"]] == [("Ready", "True", "ScaledObjectReady")]
