"""What every component's config shares: camelCase models that reject unknown keys, and the formats
(Kubernetes names, quantities, labels, image references) the stack files are checked against.

No Pulumi imports here or in any `components/*_config.py`: validating a stack file must not need the engine.
"""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"  # what Service names must be
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONFIG_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}\Z")  # \Z: a trailing newline is not a digest


# What a program receives for an unquoted date or time in a stack file: the Pulumi CLI reads it as a time and
# passes Go's time.String() (tools/stack_yaml.py does the same offline), e.g. '2026-11-30 09:15:00 +0000 UTC'.
GO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{2})(\d{2}) \S+")


def rfc3339_from_go_time(text: str) -> str | None:
    """The RFC 3339 form of a time the CLI passed in Go's format; None for any other text."""
    match = GO_TIME.fullmatch(text)
    if not match:
        return None
    date, clock, hours, minutes = match.groups()
    return f"{date}T{clock}" + ("Z" if hours + minutes in ("+0000", "-0000") else f"{hours}:{minutes}")


def image_tag(image: str) -> str | None:
    """The tag of an image reference, None without one (a registry's "host:port/" is not a tag)."""
    last_segment = image.rsplit("/", 1)[-1]
    return last_segment.rsplit(":", 1)[1] if ":" in last_segment else None


# The image reference grammar of distribution/reference (what registries, containerd and the kubelet accept): an
# optional registry host[:port], lower-case path components, a tag of at most 128 word characters, dots and dashes,
# an optional digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?"
)


def image_reference_problem(image: str) -> str | None:
    """Why a text is not an image reference a registry would serve, None when it is one."""
    if IMAGE_REFERENCE.fullmatch(image):
        return None
    if not image.strip():
        why = "it is empty"
    elif image != image.strip() or any(character.isspace() for character in image):
        why = "it contains whitespace"
    elif any(character.isupper() for character in image.split("@")[0].rsplit(":", 1)[0].split("/", 1)[-1]):
        why = "repository names are lower case"
    else:
        why = "it is not of the form [registry/]name[:tag][@sha256:digest]"
    return f"image {image!r} is not a valid image reference: {why}, e.g. 'ghcr.io/example-org/api:1.4.2'"


def image_pin_problem(image: str) -> str | None:
    """Why an image reference is not pinned (no tag, or 'latest'), None when it has a version tag or a digest."""
    invalid = image_reference_problem(image)
    if invalid:
        return invalid
    if DIGEST.search(image):
        return None
    tag = image_tag(image)
    if tag is None:
        return f"image '{image}' has no tag; pin a version, e.g. '{image}:1.2.3' or '{image}@sha256:<digest>'"
    if tag == "latest":
        return (
            f"image '{image}' uses the mutable tag 'latest'; pin a version, e.g. "
            f"'{image[: -len(':latest')]}:1.2.3' or a digest '@sha256:<digest>'"
        )
    return None


# The error type of a key that does not belong where it is set (e.g. `port` on a worker): stack_config adds the
# `pulumi config rm` command that removes it.
MISPLACED_KEY = "misplaced_key"


def misplaced_key(reason: str) -> PydanticCustomError:
    """A validator's error for a key to remove; `reason` says why, and where what the user meant belongs."""
    return PydanticCustomError(MISPLACED_KEY, reason)


def missing_key(reason: str) -> PydanticCustomError:
    """A validator's error for a key required only in some cases (`reason` says which): reported as a missing field,
    with the command that sets it."""
    return PydanticCustomError("missing", reason)


def pinned_image(image: str) -> str:
    """A validator's check: the image, or a ValueError saying how to pin it."""
    problem = image_pin_problem(image)
    if problem:
        raise ValueError(problem)
    return image


class Model(BaseModel):
    """Stack files use camelCase keys; unknown keys are typos and rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


INT32_MAX = 2**31 - 1  # every count Kubernetes stores (replicas, ports, seconds, history limits) is an int32


def whole_number_problems(model: type[BaseModel], data: Any, location: tuple = ()) -> list[tuple[tuple, str]]:
    """(location, why) of each whole-number field of `model` that `data` (raw config) fills with a boolean or a
    number beyond int32: pydantic would read `replicas: true` as 1, and the API server refuses 3000000000."""
    problems: list[tuple[tuple, str]] = []
    if not isinstance(data, dict):
        return problems
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in data:
            continue
        value, here = data[key], location + (key,)
        if _admits(field.annotation, int):
            bounded = any(hasattr(rule, "le") or hasattr(rule, "lt") for rule in field.metadata)
            if isinstance(value, bool):
                problems.append((here, f"{str(value).lower()} is a boolean where a whole number is expected; write a number"))
            elif isinstance(value, int) and not bounded and not -INT32_MAX - 1 <= value <= INT32_MAX:
                problems.append((here, f"{value} is beyond the largest number Kubernetes stores ({INT32_MAX})"))
        for inner in _models_in(field.annotation):
            items = value if isinstance(value, list) and _is_list(field.annotation) else [value]
            for index, item in enumerate(items):
                where = here + (index,) if items is value else here
                problems += whole_number_problems(inner, item, where)
    return problems


def _admits(annotation: Any, kind: type) -> bool:
    return annotation is kind or any(_admits(arg, kind) for arg in get_args(annotation) if get_origin(annotation) is not list)


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(_is_list(arg) for arg in get_args(annotation))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class CamelModel(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, alias_generator=camel)


class ComputeAmounts(CamelModel):
    cpu: str = Field(pattern=QUANTITY)
    memory: str = Field(pattern=QUANTITY)


class ContainerResources(CamelModel):
    requests: ComputeAmounts
    limits: ComputeAmounts


LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def bad_labels(labels: dict[str, str]) -> list[str]:
    return [
        f"{key}={value}"
        for key, value in labels.items()
        if not re.fullmatch(LABEL_KEY, key) or len(key.rsplit("/", 1)[-1]) > 63 or not re.fullmatch(LABEL_VALUE, value) or len(value) > 63
    ]


IAM_ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"

# Addresses that are never "the internet": the cluster's pods and Services, the VPC (and networks reached through it),
# and link-local, where the instance metadata service hands out the node's own IAM credentials. An egress to every
# address leaves them out (the databases' way out to their backups leaves out the same IPv4 list).
PRIVATE_IPV4_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
PRIVATE_IPV6_RANGES = ("fc00::/7", "fe80::/10")  # unique local (EC2's IPv6 metadata service is fd00:ec2::254), link-local


# What each format of the stack files means, in the words a config error uses (never the regex itself). A format
# without words here fails tests/test_config_input_classes.py.
PATTERN_WORDS = {
    CONFIG_KEY: "a config key: letters, digits, '_', '.' and '-', starting with a letter or digit (e.g. api-token)",
    DNS_LABEL: "lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. orders-db)",
    DNS_1035_LABEL: "lower-case letters, digits and '-', starting with a letter and ending with a letter or digit (e.g. api)",
    QUANTITY: "a Kubernetes quantity: a number with an optional unit, e.g. 250m or 1 (cpu), 512Mi or 2Gi (memory)",
    r"^https?://[^\s/]+(/\S*)?$": "an http(s) URL without spaces, e.g. http://prometheus.monitoring:9090",
    r"^/": "a path starting with '/', e.g. /healthz",
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$": "a storage class name: lower-case letters, digits, '-' and '.' (e.g. gp3)",
    r"^[a-z_][a-z0-9_]{0,62}$": "a PostgreSQL name: lower-case letters, digits and '_', not starting with a digit, 63 at most (e.g. orders)",
    r"^[A-Z][A-Z0-9_]*$": "upper-case letters, digits and '_', starting with a letter (e.g. DATABASE)",
    r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$": "an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-' (e.g. platform-backups)",
    r"^[A-Za-z0-9][A-Za-z0-9._/-]*$": "a folder in the bucket: letters, digits, '.', '_', '/' and '-' (e.g. platform)",
    r"^https?://[^/\s]+/?$": "an http(s) URL of a host, without a path, e.g. https://s3.eu-west-1.amazonaws.com",
    IAM_ROLE_ARN: "an IAM role ARN, e.g. arn:aws:iam::111122223333:role/platform-backups",
    r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$": "a host name (letters, digits, '-' and '.'), e.g. cache.example.internal",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$": "a Kubernetes name: lower-case letters, digits, '-' and '.' (e.g. public-gateway)",
    r"^https://\S+$": "an https URL without spaces",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "an e-mail address, e.g. platform-team@example.com",
    r"^[a-z]{2}(-[a-z]+)+-[0-9]+$": "an AWS region, e.g. eu-west-1",
    r"^[A-Z0-9]{1,32}$": "a Route53 hosted zone ID: upper-case letters and digits, e.g. Z0123456789ABCDEFGHIJ",
    r"^([0-9]{1,5}(h|m|s|ms)){1,4}$": "a Gateway API duration, e.g. 30s, 1m or 1m30s",
    r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$": "a lower-case DNS name with a dot, e.g. shop.example.com (or *.example.com)",
    r"^/[A-Za-z0-9/_.~%!$&'()*+,;=:@-]*$": "a URL path starting with '/', without spaces, e.g. /api",
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$": "a Prometheus duration, e.g. 30s, 5m or 1h30m",
    r"^[a-zA-Z_:][a-zA-Z0-9_:]*$": "a Prometheus metric name: letters, digits, '_' and ':', not starting with a digit",
    r"^[a-zA-Z_][a-zA-Z0-9_]*$": "a Prometheus label name: letters, digits and '_', not starting with a digit",
    r"^(latest|v1\.([0-9]|[1-9][0-9]*))$": "a Kubernetes minor version such as v1.33, or latest",
}
