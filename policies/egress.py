"""Unrestricted egress: a NetworkPolicy that lets pods reach every address needs a reason a reviewer can read.

A NetworkPolicy egress rule is unrestricted when a peer is the ipBlock 0.0.0.0/0 or ::/0 (with or without `except`:
leaving out the private ranges still opens the whole internet) or when it has no `to` at all. Such a rule is what
data leaves the cluster through, and usually stands in for the few addresses the pods really call. It passes when
the NetworkPolicy says why, in the annotation `platform.example.com/egress-reason` (the platform writes it from the
stack file's `services[].egress[].reason`).

A rule to DNS only (every port 53) without `to` is not judged: the namespace-default-deny rule accepts it as the one
way out every pod keeps. The platform's own way out to the internet, a database's to its backups on S3 (which has no
fixed addresses), carries its reason like a service's.

Enforcement is per stack (policies/config/*.json): advisory in staging, mandatory in prod.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, Severity

from .secrets import UNKNOWN, items, mapping, to_plain
from .stack_rules import DNS_PORTS, scalar

EGRESS_REASON_ANNOTATION = "platform.example.com/egress-reason"  # components/hardening.py names the same key
NETWORK_POLICY_API_VERSION = "networking.k8s.io/v1"


def _every_address(cidr: Any) -> bool:
    try:
        return isinstance(cidr, str) and ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _open_destination(rule: dict[str, Any]) -> str | None:
    """What makes an egress rule reach everywhere ('every address (ipBlock 0.0.0.0/0)', ...), or None."""
    if rule.get("to") is UNKNOWN:
        return None  # not known during preview: judged when it is
    peers = items(rule.get("to"))
    if not peers:
        return None if _dns_only(rule) else "every destination (no `to`)"
    for peer in map(mapping, peers):
        block = mapping(peer.get("ipBlock"))
        cidr = scalar(block.get("cidr"))
        if _every_address(cidr):
            excluded = items(block.get("except"))
            return f"every address (ipBlock {cidr}" + (f", except {len(excluded)} range(s))" if excluded else ")")
    return None


def _dns_only(rule: dict[str, Any]) -> bool:
    ports = [mapping(port) for port in items(rule.get("ports"))]
    return bool(ports) and all(
        scalar(port.get("port")) in DNS_PORTS and scalar(port.get("endPort")) in (None, 53) for port in ports
    )


def _ports(rule: dict[str, Any]) -> str:
    ports = [_port_text(mapping(port)) for port in items(rule.get("ports"))]
    return f"on {', '.join(ports)}" if ports else "on every port"


def _port_text(port: dict[str, Any]) -> str:
    def number(value: Any) -> str:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    first, end = scalar(port.get("port")), scalar(port.get("endPort"))
    where = "every port" if first is None else number(first) + (f"-{number(end)}" if end is not None else "")
    return f"{scalar(port.get('protocol')) or 'TCP'} {where}"


def unrestricted_egress_problems(obj: Any) -> list[str]:
    """Messages for each egress rule of a NetworkPolicy that reaches everywhere without a reason ([] otherwise)."""
    obj = to_plain(obj)
    if not isinstance(obj, dict) or (obj.get("apiVersion"), obj.get("kind")) != (NETWORK_POLICY_API_VERSION, "NetworkPolicy"):
        return []
    reason = mapping(mapping(obj.get("metadata")).get("annotations")).get(EGRESS_REASON_ANNOTATION)
    if reason is UNKNOWN or (isinstance(scalar(reason), str) and scalar(reason).strip()):
        return []
    spec = mapping(obj.get("spec"))
    types = [scalar(kind) for kind in items(spec.get("policyTypes"))]
    if types and "Egress" not in types:
        return []  # the egress rules do not apply
    problems = []
    for index, rule in enumerate(map(mapping, items(spec.get("egress")))):
        opening = _open_destination(rule)
        if opening is None:
            continue
        problems.append(
            f"spec.egress[{index}] lets the pods reach {opening} {_ports(rule)}, so anything they hold can leave the "
            f"cluster: narrow spec.egress[{index}].to to the CIDRs they call (stack file: services[].egress[].cidrs), "
            f"or, for a destination without fixed addresses, say why in the annotation {EGRESS_REASON_ANNOTATION} "
            "(stack file: a reason on every allowInternet entry, services[].egress[].reason)."
        )
    return problems


def _validate(args, report_violation) -> None:
    for message in unrestricted_egress_problems(args.props):
        report_violation(message)


egress_unrestricted = ResourceValidationPolicy(
    name="egress-unrestricted",
    description=(
        "NetworkPolicy egress to every address (0.0.0.0/0 or ::/0, with or without except, or no `to`) needs a reason "
        f"in the {EGRESS_REASON_ANNOTATION} annotation."
    ),
    validate=_validate,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
)

POLICIES: list = [egress_unrestricted]

# Which resources the policy can report on at all (see policies.pack.APPLIES_TO).
APPLIES_TO: dict = {
    egress_unrestricted: lambda resource_type, kind, api_version: kind is None or kind == "NetworkPolicy",
}
