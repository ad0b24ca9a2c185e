"""Extract the served versions' OpenAPI v3 schemas from upstream CustomResourceDefinition files.

Usage: python tools/crds/extract.py CRD_DIR [OUT_DIR]

CRD_DIR holds <group>/<name>.yaml files, each copied verbatim from upstream (see SOURCE.md): one
CustomResourceDefinition, or several as YAML documents (the VPA ships its CRDs in one file). For each CRD this writes
OUT_DIR/<group>/<plural>.json (OUT_DIR defaults to this folder), with the SHA-256 of the whole file it came from:

    {"group": ..., "kind": ..., "plural": ..., "scope": ..., "source_sha256": ...,
     "versions": {"<served version>": <openAPIV3Schema>, ...},
     "subresources": {"<served version>": {"status": {}, ...}, ...}}   (only the versions that have some)

The schema is kept as upstream wrote it (OpenAPI-flavoured; tools/schemas.py turns it into JSON Schema when it
loads it) except that `description` texts are dropped: they are most of the bytes and validation never reads them.
`subresources` is kept because an API server needs it to serve `/status` (operators write status there, and the
e2e installs these CRDs).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any


HERE = Path(__file__).resolve().parent

sys.path.insert(0, str(HERE.parent.parent))  # run as a script: the repository's tools package

from tools import kube_yaml  # noqa: E402  (YAML as the API server reads it: prometheus-operator's `matchType: =`)

# Keywords whose value maps names to subschemas: a key called "description" inside them is a field, not prose.
NAMED_SUBSCHEMA_KEYWORDS = ("properties", "patternProperties", "definitions", "$defs")


def without_descriptions(schema: Any) -> Any:
    """The schema with every `description` keyword removed (field names that happen to be "description" stay)."""
    if isinstance(schema, list):
        return [without_descriptions(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key in NAMED_SUBSCHEMA_KEYWORDS and isinstance(value, dict):
            result[key] = {name: without_descriptions(sub) for name, sub in value.items()}
        elif key in ("default", "example", "enum", "x-kubernetes-validations"):
            result[key] = value  # data, not schemas: keep untouched
        else:
            result[key] = without_descriptions(value)
    return result


def extract(crd_text: str) -> dict[str, Any]:
    """The one CustomResourceDefinition of a single-document file."""
    crd = kube_yaml.load(crd_text)
    if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
        raise ValueError(f"not a CustomResourceDefinition: kind {crd.get('kind') if isinstance(crd, dict) else crd!r}")
    return _schemas(crd, crd_text)


def extract_all(crd_text: str) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition of a file with one or more YAML documents (empty documents skipped)."""
    documents = [document for document in kube_yaml.load_all(crd_text) if document is not None]
    crds = [document for document in documents if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition"]
    if not crds or len(crds) != len(documents):
        raise ValueError("expected only CustomResourceDefinition documents")
    return [_schemas(crd, crd_text) for crd in crds]


def _schemas(crd: dict[str, Any], crd_text: str) -> dict[str, Any]:
    spec = crd["spec"]
    served = [version for version in spec["versions"] if version.get("served")]
    subresources = {version["name"]: version["subresources"] for version in served if version.get("subresources")}
    return {
        "group": spec["group"],
        "kind": spec["names"]["kind"],
        "plural": spec["names"]["plural"],
        "scope": spec["scope"],
        "source_sha256": hashlib.sha256(crd_text.encode()).hexdigest(),
        "versions": {
            version["name"]: without_descriptions(version["schema"]["openAPIV3Schema"])
            for version in served
        },
        **({"subresources": subresources} if subresources else {}),
    }


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    crd_dir = Path(argv[0])
    out_dir = Path(argv[1]) if len(argv) == 2 else HERE
    for crd_file in sorted(crd_dir.glob("*/*.yaml")):
        for extracted in extract_all(crd_file.read_text()):
            target = out_dir / extracted["group"] / f"{extracted['plural']}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            # Indented and key-sorted so that re-extracting a newer upstream CRD gives a reviewable diff.
            target.write_text(json.dumps(extracted, indent=1, sort_keys=True) + "\n")
            print(f"{crd_file} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
