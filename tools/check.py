"""The policy pack over plain Kubernetes YAML (Helm or Kustomize output, hand-written manifests).

    python -m tools.check [--format text|json|sarif] [--profile baseline|restricted [--pss-version vX.Y|latest]]
                          [--policy-pack-config FILE] PATH...

PATHs are files or folders (searched recursively for *.yaml and *.yml); files may hold several documents,
empty documents are skipped and `kind: List` is expanded. Every object goes through the pack's resource
policies via tools.analyzer, the path the Pulumi CLI uses. Stack policies judge a Pulumi stack (parents,
resource options), which plain YAML does not have, so they do not run here.

Without options every policy is mandatory; --policy-pack-config applies a `pulumi preview
--policy-pack-config` file instead. --profile runs exactly the Pod Security Standards checks of that level
(restricted includes baseline), all mandatory, nothing else.

Pod Security policy version: a pod is judged at the version its namespace's Namespace object in the input pins
with `pod-security.kubernetes.io/enforce-version` (an invalid value means latest, as in admission); pods of other
namespaces at --pss-version (the cluster default of Pod Security admission; latest when not given). Versions run
from v1.0 to v1.37 (= latest); a newer v1.x is judged as v1.37, as admission does.

Exit status: 0 no mandatory violation, 1 at least one, 2 unreadable input or options (or a policy that
failed on an object, named on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, TextIO

import yaml

from policies import pss_versions
from tools import analyzer, sarif
from tools.kube_yaml import KubeLoader

YAML_SUFFIXES = (".yaml", ".yml")


class InputError(Exception):
    """A path or document that cannot be checked; the message names the file and the reason."""


@dataclass(frozen=True)
class SourceObject:
    file: str
    line: int  # 1-based line where the object's document starts
    obj: dict[str, Any]


@dataclass(frozen=True)
class Report:
    file: str
    line: int
    kind: str
    namespace: str | None
    name: str | None
    policy: str
    enforcement: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "policy": self.policy,
            "enforcement": self.enforcement,
            "message": self.message,
        }


# --- reading input ------------------------------------------------------------------------------------------


def yaml_files(paths: Iterable[str]) -> tuple[list[Path], list[str]]:
    """Every YAML file named or under a named folder (sorted per folder), and an error per missing path."""
    files: list[Path] = []
    errors: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{raw}: no such file or folder")
    return files, errors


def documents(path: Path) -> Iterator[tuple[int, Any]]:
    """(start line, parsed document) for every document of a YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read it ({error})") from None
    loader = KubeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.YAMLError as error:
        # The loader read a string, so its marks say "<unicode string>"; the file name is in front already.
        reason = " ".join(str(error).replace('in "<unicode string>", ', "").split())
        raise InputError(f"{path}: not valid YAML: {reason}") from None
    finally:
        loader.dispose()


def objects_of(path: Path) -> list[SourceObject]:
    """The Kubernetes objects of one file; a `kind: List` contributes its items."""
    found = []
    for line, document in documents(path):
        if document is None:
            continue  # an empty document, e.g. after a trailing ---
        if not isinstance(document, dict):
            raise InputError(f"{path}:{line}: the document is a {type(document).__name__}, not a Kubernetes object")
        items = document.get("items") if document.get("kind") == "List" else [document]
        if not isinstance(items, list):
            raise InputError(f"{path}:{line}: a kind: List needs an items: list")
        for item in items:
            found.append(SourceObject(str(path), line, _kubernetes_object(item, path, line)))
    return found


def _kubernetes_object(item: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InputError(f"{path}:{line}: an item is a {type(item).__name__}, not a Kubernetes object")
    missing = [key for key in ("apiVersion", "kind") if not item.get(key)]
    if missing:
        raise InputError(f"{path}:{line}: not a Kubernetes object: {' and '.join(missing)} missing")
    return item


def read_inputs(paths: Iterable[str]) -> tuple[list[SourceObject], list[str]]:
    files, errors = yaml_files(paths)
    found: list[SourceObject] = []
    for path in files:
        try:
            found.extend(objects_of(path))
        except InputError as error:
            errors.append(str(error))
    return found, errors


# --- checking -----------------------------------------------------------------------------------------------


def choose_policies(profile: str | None, config_file: str | None) -> tuple[list, dict[str, Any]]:
    """The policies to run and the pack config to run them with."""
    if profile:
        from policies.pod_security import profile_policies

        return profile_policies(profile), {"all": "mandatory"}
    from policies.pack import ALL_POLICIES

    config = analyzer.load_policy_config(config_file) if config_file else {"all": "mandatory"}
    return ALL_POLICIES, config


def namespace_version_pins(sources: list[SourceObject]) -> tuple[dict[str, pss_versions.Version], list[str]]:
    """namespace -> version its Namespace object in the input pins, and a warning per label value that is no version."""
    from policies.pod_security import get, namespace_pins

    warnings = []
    for source in sources:
        value = get(source.obj, "metadata", "labels", pss_versions.ENFORCE_VERSION_LABEL)
        if source.obj.get("kind") != "Namespace" or source.obj.get("apiVersion") != "v1" or value is None:
            continue
        try:
            pss_versions.parse_version(value)
        except pss_versions.VersionError:
            warnings.append(
                f"{source.file}:{source.line}: Namespace {get(source.obj, 'metadata', 'name')}: "
                f'{pss_versions.ENFORCE_VERSION_LABEL} is {value!r}, not "latest" or "v1.x": Pod Security admission '
                "judges its pods at latest"
            )
    return namespace_pins(source.obj for source in sources), warnings


def check(
    sources: list[SourceObject],
    policies: list,
    config: dict[str, Any],
    default_version: pss_versions.Version = pss_versions.LATEST,
) -> list[Report]:
    from policies.pod_security import namespace_versions

    pins, _ = namespace_version_pins(sources)
    with namespace_versions(pins, default_version):
        return _check(sources, policies, config)


def _check(sources: list[SourceObject], policies: list, config: dict[str, Any]) -> list[Report]:
    servicer = analyzer.build_servicer(policies, config)
    reports = []
    for index, source in enumerate(sources):
        resource = analyzer.manifest_resource(source.obj, index)
        try:
            findings = analyzer.analyze_with(servicer, [resource], stack_policies=False)
        except Exception as error:  # noqa: BLE001 - a policy bug must not end in a traceback without the object
            raise InputError(
                f"{source.file}:{source.line}: {source.obj.get('kind')} {resource.name}: a policy failed on it "
                f"({type(error).__name__}: {error}); please report this with the object"
            ) from None
        reports.extend(_report(source, finding) for finding in findings)
    return reports


def _report(source: SourceObject, finding: analyzer.Finding) -> Report:
    metadata = source.obj.get("metadata") if isinstance(source.obj.get("metadata"), dict) else {}
    return Report(
        file=source.file,
        line=source.line,
        kind=str(source.obj.get("kind")),
        namespace=metadata.get("namespace"),
        name=metadata.get("name"),
        policy=finding.policy,
        enforcement=finding.enforcement,
        message=finding.message,
    )


# --- output -------------------------------------------------------------------------------------------------


def format_text(reports: list[Report], sources: list[SourceObject]) -> str:
    lines = [
        f"{r.file}:{r.line}: {r.kind} {r.namespace or '-'}/{r.name or '-'}: [{r.enforcement}] {r.policy}: {r.message}"
        for r in reports
    ]
    blocking = sum(r.enforcement in sarif.BLOCKING for r in reports)
    files = len({s.file for s in sources})
    lines.append(
        f"{len(reports)} finding(s), {blocking} mandatory, {len(reports) - blocking} advisory, "
        f"in {len(sources)} object(s) from {files} file(s)"
    )
    return "\n".join(lines) + "\n"


def format_json(reports: list[Report]) -> str:
    return json.dumps([r.as_json() for r in reports], indent=2) + "\n"


def format_sarif(reports: list[Report], policies: list) -> str:
    from policies.pack import PACK_NAME

    index = {policy.name: position for position, policy in enumerate(policies)}
    results = [
        sarif.result(
            r.policy,
            index.get(r.policy, -1),
            r.enforcement,
            f"{r.kind} {r.namespace or '-'}/{r.name or '-'}: {r.message}",
            [sarif.location(r.file, r.line)],
        )
        for r in reports
    ]
    log = sarif.log(PACK_NAME, analyzer.pack_version(), [sarif.policy_rule(policy) for policy in policies], results)
    return json.dumps(log, indent=2) + "\n"


# --- command line -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.check",
        description="Run the platform policy pack over plain Kubernetes YAML files or folders.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML file or folder (searched recursively)")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument(
        "--profile",
        choices=("baseline", "restricted"),
        help="run only the Pod Security Standards checks of this level (restricted includes baseline)",
    )
    parser.add_argument(
        "--pss-version",
        metavar="vX.Y|latest",
        help="with --profile: the Pod Security policy version (v1.0 .. v1.37, latest = v1.37) for pods whose "
        "namespace has no Namespace object with pod-security.kubernetes.io/enforce-version in the input",
    )
    parser.add_argument("--policy-pack-config", metavar="FILE", help="a --policy-pack-config JSON file")
    args = parser.parse_args(argv)
    if args.profile and args.policy_pack_config:
        parser.error("--profile runs its checks as mandatory; drop --policy-pack-config or --profile")
    args.default_version = pss_versions.LATEST
    if args.pss_version is not None:
        if not args.profile:
            parser.error("--pss-version needs --profile baseline|restricted (it versions the Pod Security checks)")
        try:
            args.default_version = pss_versions.parse_version(args.pss_version)
        except pss_versions.VersionError as error:
            parser.error(f"--pss-version: {error}")
    return args


def main(argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parse_args(argv)
    except SystemExit as exit_:  # argparse has printed --help or the usage error
        return int(exit_.code or 0)

    sources, errors = read_inputs(args.paths)
    try:
        policies, config = choose_policies(args.profile, args.policy_pack_config)
    except analyzer.PolicyConfigError as error:
        errors.append(str(error))
    if errors:
        for error in errors:
            print(f"error: {error}", file=stderr)
        return 2
    if not sources:
        print(f"warning: no Kubernetes objects found in {' '.join(args.paths)}", file=stderr)
    if args.pss_version is not None and pss_versions.is_newer_than_latest(args.pss_version):
        print(
            f"warning: --pss-version {args.pss_version} is newer than the newest policy version; judging at "
            f"{pss_versions.format_version(pss_versions.LATEST)}, as Pod Security admission does",
            file=stderr,
        )
    for warning in namespace_version_pins(sources)[1]:
        print(f"warning: {warning}", file=stderr)
    for name in analyzer.unknown_policy_names(config, policies):
        print(f"warning: {args.policy_pack_config}: {name!r} names no policy of the pack; check the spelling", file=stderr)

    try:
        reports = check(sources, policies, config, args.default_version)
    except (analyzer.PolicyConfigError, InputError) as error:
        print(f"error: {error}", file=stderr)
        return 2

    if args.format == "json":
        stdout.write(format_json(reports))
    elif args.format == "sarif":
        stdout.write(format_sarif(reports, policies))
    else:
        stdout.write(format_text(reports, sources))
    return 1 if any(r.enforcement in sarif.BLOCKING for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
