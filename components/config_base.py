"""What every component's config shares: camelCase models that reject unknown keys, and the formats
(Kubernetes names, quantities, labels, image references) the stack files are checked against.

No Pulumi imports here or in any `components/*_config.py`: validating a stack file must not need the engine.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"  # what Service names must be
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONFIG_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


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


def image_pin_problem(image: str) -> str | None:
    """Why an image reference is not pinned (no tag, or 'latest'), None when it has a version tag or a digest."""
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
        if not re.match(LABEL_KEY, key) or len(key.rsplit("/", 1)[-1]) > 63 or not re.match(LABEL_VALUE, value) or len(value) > 63
    ]


IAM_ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"

# Addresses that are never "the internet": the cluster's pods and Services, the VPC (and networks reached through it),
# and link-local, where the instance metadata service hands out the node's own IAM credentials. An egress to every
# address leaves them out (the databases' way out to their backups leaves out the same IPv4 list).
PRIVATE_IPV4_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
PRIVATE_IPV6_RANGES = ("fc00::/7", "fe80::/10")  # unique local (EC2's IPv6 metadata service is fd00:ec2::254), link-local
