"""YAML as Kubernetes reads it, for everything here that reads Kubernetes objects from YAML.

PyYAML follows YAML 1.1, where a bare `=` is the 'value' tag, which it cannot construct; Go's YAML (the API server,
kubectl, the kubernetes provider's rendered files) reads the string "=". prometheus-operator's AlertmanagerConfig
writes `matchType: =`, in its CRD and in every object that matches on equality (`make e2e` met it in the provider's
rendering of prod's alert routing).
"""

from __future__ import annotations

from typing import Any, Iterator

import yaml

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is about 10x faster


class KubeLoader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader, with a bare `=` read as the string "="."""


KubeLoader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


def load(text: str) -> Any:
    return yaml.load(text, Loader=KubeLoader)


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=KubeLoader)
