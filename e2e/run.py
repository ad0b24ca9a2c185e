"""`make e2e`: the program, the kubernetes provider and the policy pack under the real Pulumi engine.

    python -m e2e.run [--stacks local,staging,prod] [--out build/e2e]

(a) No cluster: each stack is set up as a user would and the kubernetes provider renders YAML to a folder;
    a real `pulumi preview` and `pulumi up` with the policy pack are compared with `tools.preview` of the same
    stack: URNs, objects and policy findings must be equal.
(b) A local control plane (etcd, kube-apiserver with Pod Security Admission, controller manager, scheduler,
    kwok): `pulumi up` of each stack, then every object exists, every pod is admitted, a non-compliant pod is
    refused, a second preview and a refresh show nothing, two config changes preview as `tools.preview --diff`
    says, and `destroy` removes local and staging while prod's `protect` refuses it.
Writes build/e2e/report.json and exits 1 when any check fails. Needs the toolchain (e2e/toolchain.sh).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any, Callable

from e2e import compare, controlplane, cron_runs, judges, launchers, operators
from e2e import yaml_parity
from e2e.kube import ApiError
from e2e.processes import Processes, free_port, wait_until
from e2e.stacks import E2EStack, offline_preview, prepare
from tools import engine, kube_yaml

E2E_DIR = Path(__file__).resolve().parent
STACKS = ("local", "staging", "prod")
# Charts of the local add-ons come from the internet; with them off, the harness stands in for what their
# charts would install first: the CRDs (tools/crds) and the operators' namespaces.
OPERATOR_NAMESPACES = ("cnpg-system", "envoy-gateway-system", "monitoring", "cert-manager")
CHECKS = (
    "previewOk", "upOk", "urnsMatchOffline", "objectsMatchOffline", "findingsMatchOffline", "podsAdmitted",
    "nonCompliantPodRejected", "noChangesOnSecondPreview", "noDriftOnRefresh", "destroyOk", "destroyRefusedByProtect",
)  # fmt: skip


def built_toolchain() -> Path | None:
    """The toolchain's bin directory, or None while it is not (completely) built."""
    result = subprocess.run([str(E2E_DIR / "toolchain.sh"), "--print"], capture_output=True, text=True)
    return Path(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else None


def toolchain_bin() -> Path:
    bin_dir = built_toolchain()
    if bin_dir is None:
        raise SystemExit("error: the e2e toolchain is not built; run `e2e/toolchain.sh` (make e2e does) first")
    return bin_dir


def pins() -> dict[str, str]:
    values = {}
    for line in (E2E_DIR / "pins.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value.strip('"')
    return values


def kubernetes_provider_version() -> str:
    """The provider reports no version on its command line: the pins say what was built."""
    pinned = pins()
    return f"{pinned['K8S_PROVIDER_VERSION']} (github.com/pulumi/pulumi-kubernetes/provider/v4@{pinned['K8S_PROVIDER_MODULE_VERSION']})"


def tool_version(path: Path, *args: str) -> str:
    out = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=60).stdout
    return out.strip().splitlines()[0] if out.strip() else "unknown"


class StackRun:
    """One stack's checks: each recorded as it runs; an exception fails that check and is logged, not raised."""

    def __init__(self, name: str, log: Path):
        self.name = name
        self.log = log
        self.result: dict[str, Any] = {check: None for check in CHECKS}
        self.notes: list[str] = []
        self.seconds = 0.0

    @contextlib.contextmanager
    def timed(self):
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds += time.monotonic() - started

    def check(self, key: str, action: Callable[[], Any]) -> Any:
        try:
            value = action()
        except Exception as error:  # noqa: BLE001 - the report says which check failed and why
            self.result[key] = False
            self.note(f"{key}: {type(error).__name__}: {error}")
            with self.log.open("a") as out:
                traceback.print_exc(file=out)
            return None
        self.set(key, value)
        return value

    def set(self, key: str, value: Any) -> None:
        """Records a result; a check that failed once (e.g. `upOk` in part (a)) stays failed."""
        self.result[key] = False if self.result.get(key) is False else value

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  [{self.name}] {text}", flush=True)


def engine_env(home: Path, bin_dirs: list[Path], passphrase: str, moto_url: str) -> dict[str, str]:
    """Offline CLI settings; AWS settings point the backup bucket's boto3 at the local moto server."""
    return {
        **os.environ,
        "PATH": os.pathsep.join([*map(str, bin_dirs), os.environ.get("PATH", "")]),
        "PULUMI_HOME": str(home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_DISABLE_REGISTRY_RESOLVE": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "PULUMI_CONFIG_PASSPHRASE": passphrase,
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "E2E_MOTO_URL": moto_url,
    }  # fmt: skip


def start_moto(processes: Processes) -> str:
    port = free_port()
    process, log = processes.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
    url = f"http://127.0.0.1:{port}"
    wait_until("moto", lambda: urllib.request.urlopen(f"{url}/moto-api/", timeout=2).status == 200, 60, process, log)
    return url


def reset_moto(moto_url: str) -> None:
    """An empty cloud for each stack: the bucket a part (a) run made must not exist for part (b)."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).read()


def common_overrides(stack: str, moto_url: str) -> dict[str, Any]:
    """What the e2e machine needs changed: the bucket API at moto, and no add-on charts (they need the internet)."""
    config = engine.read_stack_file(stack)["config"]
    overrides: dict[str, Any] = {}
    backups = config.get("platform:backups")
    if isinstance(backups, dict):
        overrides["platform:backups"] = {**backups, "adminEndpoint": moto_url}
    if isinstance(config.get("platform:addons"), dict):
        overrides["platform:addons"] = {key: False for key in config["platform:addons"]}
    return overrides


def run_events(operation: Callable[..., Any], **kwargs) -> tuple[Any, list]:
    events: list = []
    result = operation(on_event=events.append, **kwargs)
    return result, events


def policy_args(e2e: E2EStack, policy_config: Path | None = None) -> dict[str, Any]:
    launcher = Path(e2e.env["PATH"].split(os.pathsep)[0]) / launchers.POLICY_PACK_LAUNCHER
    return {"policy_packs": [str(launcher)], "policy_pack_configs": [str(policy_config or e2e.policy_config)]}


# The shipped stacks are clean, so equal findings would only be two empty sets. The probe judges staging (image
# tags) with prod's pack config (digests required): both engines must report the same mandatory findings.
PROBE_STACK = "staging"
PROBE_POLICY_CONFIG = engine.PROJECT_DIR / "policies" / "config" / "prod.json"


def probe_findings(e2e: E2EStack, automation, folder: Path, run: StackRun) -> bool:
    from pulumi.automation import CommandError

    events: list = []
    try:
        automation.preview(on_event=events.append, **policy_args(e2e, PROBE_POLICY_CONFIG))
    except CommandError:
        pass  # mandatory violations fail the preview, as they should
    real = compare.real_findings(events)
    offline = compare.offline_findings(offline_preview(e2e, folder / "offline-probe", policy_config=PROBE_POLICY_CONFIG))
    run.note(f"findings probe ({e2e.name} judged by {PROBE_POLICY_CONFIG.name}): real {len(real)}, offline {len(offline)}")
    for finding in sorted(real ^ offline):
        run.note(f"probe finding only {'in the real engine' if finding in real else 'offline'}: {finding}")
    return bool(real) and real == offline


# --- (a) no cluster ------------------------------------------------------------------------------------------


def without_cluster(stack: str, folder: Path, env: dict[str, str], pulumi_root: Path, moto_url: str, run: StackRun) -> None:
    render_dir = folder / "rendered"
    reset_moto(moto_url)
    overrides = common_overrides(stack, moto_url)
    overrides["platform:kubernetes"] = {"renderDirectory": str(render_dir), "renderSecretsInPlaintext": True}
    e2e = prepare(stack, folder, env, pulumi_root, overrides)
    automation = e2e.automation()

    preview = run.check("previewOk", lambda: run_events(automation.preview, **policy_args(e2e)))
    if preview:
        run.set("previewOk", True)
    offline_dir = folder / "offline"
    offline = offline_preview(e2e, offline_dir)
    up = run.check("upOk", lambda: run_events(automation.up, **policy_args(e2e)))
    if up:
        run.set("upOk", True)
    if not (preview and up):
        return
    real_urns = compare.program_urns(r["urn"] for r in automation.export_stack().deployment["resources"])
    offline_urns = {r["urn"] for r in offline["resources"]}
    run.result["urnsMatchOffline"] = real_urns == offline_urns
    for urn in sorted(real_urns ^ offline_urns):
        run.note(f"URN only {'in the real engine' if urn in real_urns else 'offline'}: {urn}")

    differences = compare.object_differences(compare.rendered_objects(render_dir), compare.offline_objects(offline_dir))
    run.result["objectsMatchOffline"] = not differences
    for difference in differences:
        run.note(f"object: {difference}")
    scrub_rendered_secrets(render_dir)

    real = compare.real_findings(preview[1]) | compare.real_findings(up[1])
    offline_set = compare.offline_findings(offline)
    run.result["findingsMatchOffline"] = real == offline_set
    for finding in sorted(real ^ offline_set):
        run.note(f"finding only {'in the real engine' if finding in real else 'offline'}: {finding}")
    run.result["findings"] = len(real)
    run.check("secretsStayEncrypted", lambda: secrets_stay_encrypted(e2e, folder, run))
    if stack == PROBE_STACK:
        run.check("probeFindingsMatchOffline", lambda: probe_findings(e2e, automation, folder, run))


def secrets_stay_encrypted(e2e: E2EStack, folder: Path, run: StackRun) -> bool:
    """No secret config value in plaintext anywhere the stack's run wrote: state, stack file, YAML, previews, logs."""
    # As given, and base64-encoded as a Secret's `data` holds it.
    forms = {key: (value, base64.b64encode(value.encode()).decode()) for key, value in e2e.secret_values.items()}
    leaks = []
    for path in [p for p in folder.rglob("*") if p.is_file()] + [p for p in (folder.parent.parent / "logs").glob("*") if p.is_file()]:
        text = path.read_text(errors="replace")
        leaks += [f"{key} in {path}" for key, encodings in forms.items() if any(form in text for form in encodings)]
    for leak in leaks:
        run.note(f"plaintext secret: {leak}")
    return not leaks


def scrub_rendered_secrets(render_dir: Path) -> None:
    """The provider wrote Secret values in plaintext; once compared, they are masked (build/e2e is kept as a CI log)."""
    import yaml

    for path in render_dir.rglob("*.yaml"):
        documents = list(kube_yaml.load_all(path.read_text()))
        if any(isinstance(d, dict) and d.get("kind") == "Secret" for d in documents):
            path.write_text(yaml.safe_dump_all([compare.mask_secret_data(d) if isinstance(d, dict) else d for d in documents]))


# --- (b) on the local control plane ---------------------------------------------------------------------------


# The API server refuses CRDs in *.k8s.io groups without this upstream approval annotation (tools/crds keeps
# only the schemas); the value is the one upstream's CRDs carry (Gateway API's; the VPA's, deploy/vpa-v1-crd-gen.yaml).
CRD_ANNOTATIONS = {
    "gateway.networking.k8s.io": {"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466"},
    "autoscaling.k8s.io": {"api-approved.kubernetes.io": "https://github.com/kubernetes/kubernetes/pull/63797"},
}


def crd_objects() -> list[dict[str, Any]]:
    """CustomResourceDefinitions made from the schemas in tools/crds (what the operators' charts install)."""
    crds = []
    for path in sorted((engine.PROJECT_DIR / "tools" / "crds").glob("*/*.json")):
        data = json.loads(path.read_text())
        names = list(data["versions"])
        storage = "v1" if "v1" in names else names[0]
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{data['plural']}.{data['group']}", "annotations": CRD_ANNOTATIONS.get(data["group"], {})},
                "spec": {
                    "group": data["group"],
                    "scope": data["scope"],
                    "names": {"kind": data["kind"], "plural": data["plural"], "singular": data["kind"].lower(), "listKind": f"{data['kind']}List"},
                    "versions": [
                        {"name": name, "served": True, "storage": name == storage, "schema": {"openAPIV3Schema": schema},
                         **({"subresources": data["subresources"][name]} if name in data.get("subresources", {}) else {})}
                        for name, schema in data["versions"].items()
                    ],
                },
            }
        )
    return crds


def install_cluster_prerequisites(plane: controlplane.ControlPlane) -> None:
    kube = plane.kube
    for crd in crd_objects():
        kube.apply(crd)
        kube.register_crd(crd)
    for crd in crd_objects():
        def established(name=crd["metadata"]["name"]) -> bool:
            status = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name).get("status", {})
            return any(c["type"] == "Established" and c["status"] == "True" for c in status.get("conditions", []))

        wait_until(f"CRD {crd['metadata']['name']}", established, 60)
    for namespace in OPERATOR_NAMESPACES:
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


NON_COMPLIANT_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "e2e-privileged-probe"},
    "spec": {"containers": [{"name": "probe", "image": "busybox:1.36", "securityContext": {"privileged": True}}]},
}


def non_compliant_pod_rejected(plane: controlplane.ControlPlane, namespace: str, run: StackRun) -> bool:
    pod = {**NON_COMPLIANT_POD, "metadata": {**NON_COMPLIANT_POD["metadata"], "namespace": namespace}}
    try:
        plane.kube.create(pod)
    except ApiError as error:
        run.note(f"privileged pod refused: {json.loads(error.body).get('message', error.body)[:300]}")
        return error.status == 403 and "violates PodSecurity" in error.body
    plane.kube.request("DELETE", plane.kube.path("v1", "Pod", namespace, pod["metadata"]["name"]))
    return False


def desired_replicas(kube, namespace: str) -> dict[str, int]:
    """Deployment name -> the pods it should run: its replicas, or its HPA's minimum when an HPA owns the count."""
    desired = {d["metadata"]["name"]: d["spec"].get("replicas", 1) for d in kube.list("apps/v1", "Deployment", namespace)}
    # A cache's data nodes and Sentinels: their pods are the StatefulSet controller's, admitted like any other.
    desired.update({s["metadata"]["name"]: s["spec"].get("replicas", 1) for s in kube.list("apps/v1", "StatefulSet", namespace)})
    for hpa in kube.list("autoscaling/v2", "HorizontalPodAutoscaler", namespace):
        target = hpa["spec"]["scaleTargetRef"]
        if target["kind"] == "Deployment" and target["name"] in desired:
            desired[target["name"]] = max(desired[target["name"]], hpa["spec"].get("minReplicas", 1))
    return desired


def pods_admitted(plane: controlplane.ControlPlane, namespace: str, run: StackRun) -> int:
    """The pods the stack's Deployments and StatefulSets run, once each has as many Ready pods as it (or its HPA) asks for.

    A pod Pod Security Admission refuses never exists: its ReplicaSet reports ReplicaFailure and the count stays
    short, so either fails the check.
    """
    kube = plane.kube

    def ready() -> dict[str, int]:
        workloads = kube.list("apps/v1", "Deployment", namespace) + kube.list("apps/v1", "StatefulSet", namespace)
        return {w["metadata"]["name"]: w.get("status", {}).get("readyReplicas", 0) for w in workloads}

    try:
        wait_until(f"pods of {namespace}", lambda: ready() == desired_replicas(kube, namespace), 240)
    except RuntimeError as error:
        run.note(f"{error}: ready {ready()}, desired {desired_replicas(kube, namespace)}")
    refused = []
    for rs in kube.list("apps/v1", "ReplicaSet", namespace):
        for condition in rs.get("status", {}).get("conditions", []):
            if condition["type"] == "ReplicaFailure" and condition["status"] == "True":
                refused.append(f"{rs['metadata']['name']}: {condition.get('message', '')}")
    if refused:
        raise AssertionError("pods refused: " + "; ".join(refused))
    desired = desired_replicas(kube, namespace)
    # Each Deployment's Running pods (through its ReplicaSets): the database's instance pods are CloudNativePG's own
    # and checked by e2e/operators.py, a StatefulSet's by its own status.
    running = dict.fromkeys(desired, 0)
    for pod in kube.list("v1", "Pod", namespace):
        if pod.get("status", {}).get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
            continue
        for owner in pod["metadata"].get("ownerReferences", []):
            deployment = owner["name"].rsplit("-", 1)[0]
            if owner["kind"] == "ReplicaSet" and deployment in running:
                running[deployment] += 1
            elif owner["kind"] == "StatefulSet" and owner["name"] in running:  # a cache's data nodes and Sentinels
                running[owner["name"]] += 1
    if running != desired:
        raise AssertionError(f"pods running per Deployment in {namespace}: {running}, asked for {desired}")
    return sum(running.values())


def objects_present(plane: controlplane.ControlPlane, offline_dir: Path) -> dict[str, bool]:
    """Each object the offline preview wrote ('Kind namespace/name') -> whether the API server has it."""
    return {
        f"{kind} {namespace}/{name}": plane.kube.get(api_version, kind, name, namespace or None) is not None
        for api_version, kind, namespace, name in compare.offline_objects(offline_dir)
    }


def missing_objects(plane: controlplane.ControlPlane, offline_dir: Path) -> list[str]:
    return [item for item, present in objects_present(plane, offline_dir).items() if not present]


def on_cluster(stack: str, folder: Path, env: dict[str, str], pulumi_root: Path, moto_url: str, plane, run: StackRun, ops=None, judged=None) -> None:
    config = engine.read_stack_file(stack)["config"]
    reset_moto(moto_url)
    overrides = common_overrides(stack, moto_url)
    secret_overrides = {}
    if "kubeconfigSecretKey" in config["platform:kubernetes"]:
        # prod reads its kubeconfig from secret config, as it would in CI.
        secret_overrides[config["platform:kubernetes"]["kubeconfigSecretKey"]] = plane.kubeconfig_text
    else:
        overrides["platform:kubernetes"] = {"context": plane.context}
    e2e = prepare(stack, folder, {**env, "KUBECONFIG": str(plane.kubeconfig)}, pulumi_root, overrides, secret_overrides)
    automation = e2e.automation()
    namespace = config["platform:namespace"]
    offline_dir = folder / "offline"
    offline_preview(e2e, offline_dir)
    objects = list(compare.offline_objects(offline_dir).values())

    condition_stand_ins = judges.before_up(judged, config, operators.CONDITION_STAND_INS, run) if judged else operators.CONDITION_STAND_INS
    stand_ins = operators.before_up(ops, stack, namespace, objects, condition_stand_ins) if ops else None
    try:
        up = run.check("upOk", lambda: run_events(automation.up, **policy_args(e2e)))
    finally:
        if stand_ins:
            stand_ins.stop()
    if up is None:
        return
    run.set("upOk", True)
    if ops:
        operators.after_up(ops, e2e, automation, namespace, objects, stand_ins, run)
    if judged:
        judges.after_up(judged, e2e, automation, plane.kube, namespace, config, stand_ins.written if stand_ins else {}, run)
    missing = missing_objects(plane, offline_dir)
    run.result["allObjectsExist"] = not missing
    for item in missing:
        run.note(f"missing in the API server: {item}")
    run.check("podsAdmitted", lambda: pods_admitted(plane, namespace, run))
    if plane.kube.list("batch/v1", "CronJob", namespace):  # a run of each, as `kubectl create job --from=cronjob/...`
        run.check("cronJobRunAdmitted", lambda: cron_runs.cron_job_runs_complete(plane.kube, namespace, run.note))
    run.check("nonCompliantPodRejected", lambda: non_compliant_pod_rejected(plane, namespace, run))
    run.check("noChangesOnSecondPreview", lambda: bool(automation.preview(expect_no_changes=True, **policy_args(e2e))))
    run.check("noDriftOnRefresh", lambda: bool(automation.refresh(expect_no_changes=True)))
    run.check("changesPreviewAsOffline", lambda: config_changes_match(e2e, automation, offline_dir, run))

    if stack == "prod":
        run.check("destroyRefusedByProtect", lambda: destroy_refused(automation, plane, offline_dir, run))
        run.result["destroyOk"] = None
    else:
        run.check("destroyOk", lambda: destroyed(automation, plane, offline_dir, run))
        run.result["destroyRefusedByProtect"] = None


def config_value(config: dict[str, Any], path: str) -> Any:
    """The value at a `pulumi config --path` path ('databases[0].storage.storageClass'), None when absent."""
    first, *rest = re.findall(r"[^.\[\]]+", path)
    value = config.get(f"{engine.project_name()}:{first}")
    for part in rest:
        value = value[int(part)] if isinstance(value, list) else value.get(part) if isinstance(value, dict) else None
    return value


def config_changes_match(e2e: E2EStack, automation, base_dir: Path, run: StackRun) -> bool:
    """An image tag and a database's storage class, each changed with `pulumi config set --path` and previewed by
    both engines (the offline one with --diff against the deployed config's --out): same URNs, same actions."""
    config = engine.read_stack_file(e2e.name, e2e.project_dir)["config"]
    image = config["platform:services"][0]["image"]
    # A new tag, or a new digest where the stack pins digests (prod refuses tags at config time).
    name = image.split("@")[0].split(":")[0]
    new_image = f"{name}@sha256:{hashlib.sha256(b'e2e').hexdigest()}" if "@sha256:" in image else f"{name}:9.9.9"
    changes = {
        "image": ("services[0].image", new_image),
        "storage class": ("databases[0].storage.storageClass", "e2e-other-class"),
    }
    ok = True
    for label, (path, value) in changes.items():
        original = config_value(config, path)
        e2e.cli("config", "set", "--path", path, value)
        try:
            _, events = run_events(automation.preview)
            real = compare.real_actions(events)
            offline = compare.offline_actions(offline_preview(e2e, base_dir.parent / f"offline-{label.replace(' ', '-')}", base_dir))
        finally:
            if original is None:
                e2e.cli("config", "rm", "--path", path)
            else:
                e2e.cli("config", "set", "--path", path, str(original))
        if real != offline:
            ok = False
        run.note(f"config change '{label}': real {sorted(real.items())}; offline {sorted(offline.items())}")
    return ok


def destroy_refused(automation, plane, offline_dir: Path, run: StackRun) -> bool:
    try:
        automation.destroy()
    except Exception as error:  # noqa: BLE001 - the CLI refuses: that is the expected outcome
        reasons = [line.strip() for line in str(error).splitlines() if "protect" in line]
        run.note(f"destroy refused: {reasons[:3]}")
        refused = bool(reasons)
    else:
        run.note("destroy was not refused")
        refused = False
    # The migration Job is the one unprotected resource of prod (a new image replaces it, which protect would
    # refuse): the destroy may delete it before it stops at a protected one.
    missing = [item for item in missing_objects(plane, offline_dir) if not item.startswith("Job ")]
    for item in missing:
        run.note(f"deleted although destroy was refused: {item}")
    return refused and not missing


def destroyed(automation, plane, offline_dir: Path, run: StackRun) -> bool:
    automation.destroy()
    left = [item for item, present in objects_present(plane, offline_dir).items() if present]
    for item in left:
        run.note(f"left after destroy: {item}")
    return not left


# --- report --------------------------------------------------------------------------------------------------


def failed_checks(report: dict[str, Any]) -> list[str]:
    failures = []
    for stack, result in report["stacks"].items():
        for key, value in result.items():
            if key in ("seconds", "findings", "notes"):
                continue
            if value is False or (key == "podsAdmitted" and value == 0):
                failures.append(f"{stack}.{key}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--out", type=Path, default=engine.PROJECT_DIR / "build" / "e2e")
    parser.add_argument("--no-control-plane", action="store_true", help="part (a) only")
    parser.add_argument("--bin-dir", type=Path, help=argparse.SUPPRESS)  # a toolchain still being built
    args = parser.parse_args(argv)
    stacks = [s for s in args.stacks.split(",") if s]

    bin_dir = args.bin_dir or toolchain_bin()
    pulumi_root = bin_dir.parent
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    passphrase = secrets.token_urlsafe(24)
    report: dict[str, Any] = {
        "pulumi": tool_version(bin_dir / "pulumi", "version"),
        "providers": {"kubernetes": kubernetes_provider_version(), "random": "stand-in"},
        "controlPlane": None,
        "operators": None,
        "stacks": {},
        "gaps": [],
    }
    print("stack files: the real CLI's reading against tools.stack_yaml's (tests/stack_yaml/corpus)", flush=True)
    report["stackYamlParity"] = yaml_parity.check(bin_dir / "pulumi", out / "yaml-parity")
    with Processes(out / "logs") as processes:
        moto_url = start_moto(processes)
        env = engine_env(out / "pulumi-home", [launchers.write(out / "launchers"), bin_dir], passphrase, moto_url)
        runs = {stack: StackRun(stack, out / "logs" / f"{stack}.log") for stack in stacks}
        for stack in stacks:
            print(f"(a) {stack}: real preview and up, rendering YAML, against tools.preview", flush=True)
            run = runs[stack]
            with run.timed():
                run.check("setup", lambda: without_cluster(stack, out / "no-cluster" / stack, env, pulumi_root, moto_url, run))
        print("alerts: promtool check and test rules on every stack's rendered PrometheusRule", flush=True)
        report.update(judges.alert_tests(bin_dir / "promtool", out / "no-cluster", stacks, out / "alerts"))
        plane = ops = judged = None
        if not args.no_control_plane:
            try:
                plane = controlplane.start(bin_dir, out / "control-plane", processes)
                install_cluster_prerequisites(plane)
                ops = start_operators(bin_dir, out, plane, processes, report)
                judged = judges.start(bin_dir, out / "webhooks", plane, processes)
                report["controlPlane"] = {
                    "kubernetes": tool_version(bin_dir / "kube-apiserver", "--version").split()[-1],
                    "etcd": "v" + tool_version(bin_dir / "etcd", "--version").split()[-1].lstrip("v"),
                }
            except Exception as error:  # noqa: BLE001 - part (a) stands; the report says what stopped (b)
                report["controlPlaneError"] = str(error)
                plane = None
        for stack in stacks if plane else ():
            print(f"(b) {stack}: pulumi up on the local control plane", flush=True)
            run = runs[stack]
            with run.timed():
                run.check("clusterSetup", lambda: on_cluster(stack, out / "cluster" / stack, env, pulumi_root, moto_url, plane, run, ops, judged))
    for stack, run in runs.items():
        result = {k: v for k, v in run.result.items() if k not in ("setup", "clusterSetup") or v is False}
        result["seconds"] = round(run.seconds, 1)
        result["notes"] = run.notes
        report["stacks"][stack] = result
    report["gaps"] += known_gaps()
    failures = failed_checks(report) + (["controlPlane"] if "controlPlaneError" in report else [])
    failures += [] if report["stackYamlParity"]["agree"] else ["stackYamlParity"]
    failures += ["crdsMatchOperators"] if report.get("crdsMatchOperators") is False else []
    failures += [] if report["alertsFireAsDesigned"] else ["alertsFireAsDesigned"]
    report["failed"] = failures
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("pulumi", "providers", "controlPlane", "operators", "failed")}, indent=2))
    print(f"report: {out / 'report.json'}")
    return 1 if failures else 0


def start_operators(bin_dir: Path, out: Path, plane, processes: Processes, report: dict[str, Any]):
    """CloudNativePG and its Barman Cloud plugin (e2e/operators.py), at the versions the toolchain built."""
    pinned = pins()
    versions = {"cloudnativePG": pinned["CNPG_VERSION"], "barmanCloud": pinned["BARMAN_CLOUD_PLUGIN_VERSION"]}
    operators.install_crds(plane.kube, bin_dir)
    mismatches = operators.crds_match(bin_dir, engine.PROJECT_DIR / "tools" / "crds")
    report["crdsMatchOperators"] = not mismatches
    report["gaps"] += mismatches
    ops = operators.start(bin_dir, out / "operators", plane, processes, versions)
    report["operators"] = versions
    return ops


def known_gaps() -> list[str]:
    """What a passing run does not show, and why (README, "Verified for real")."""
    return [
        "random is a STAND-IN (e2e/standins/random_provider.py, RandomPassword only): github.com/pulumi/pulumi-random/provider/v4 "
        "is not served by the Go module proxy at any version",
        "no Python language host: github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 is not served, so the "
        "program runs through the Automation API's inline mode and the policy pack through a launcher file; the CLI "
        "starting __main__.py itself (and installing its virtualenv) is not exercised",
        "the kubernetes provider is 4.25.0 (the only served module version) while the Python SDK is 4.34.2: fields added "
        "after 4.25 would not be checked by this provider",
        "no kubelet or container runtime: kwok marks scheduled pods Running and Ready; images, probes, the non-root uid and "
        "the read-only root filesystem are not exercised at run time",
        "no CNI: NetworkPolicies are stored by the API server, not enforced",
        "CloudNativePG and its Barman Cloud plugin run (their pods, webhooks and readiness are checked), but under kwok the "
        "operator cannot reach an instance manager: only the bootstrap Job pod and the primary exist, never the replicas, "
        "and the Cluster's Ready condition is written by the harness once the primary is Ready (standInStatus); no "
        "PostgreSQL runs, so WAL archiving and backups are not exercised",
        "cert-manager issues the local stack's chain and prod's certificates (through a CA ClusterIssuer the harness makes "
        "under the owners' ClusterIssuer's name, not Let's Encrypt); staging's ACME Issuer and certificates cannot be "
        "issued here (no internet, no HTTP-01 data plane), so their Ready condition is written by the harness (standInStatus)",
        "prometheus-operator's and cert-manager's validation judge every stack's objects at pulumi up, but neither "
        "Prometheus nor Alertmanager runs: the alerts are proven by promtool's unit tests, not by a live Prometheus",
        "no other operators (Envoy Gateway): the Gateway's awaited condition is written by the harness (standInStatus)",
        "the backup bucket's S3 API is moto on 127.0.0.1; IAM roles (IRSA) and ACME are not exercised",
        "the local stack's Helm add-ons are off: their charts need the internet",
    ]


if __name__ == "__main__":
    sys.exit(main())
