"""The `ingress` stack config key: the way in that components.ingress.Ingress makes (Gateway API or Ingress, TLS)."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from components.config_base import DNS_LABEL, LABEL_KEY, CamelModel, bad_labels

HOSTNAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Gateway API's Duration (GEP-2257), as its CRDs validate it: 1 to 4 numbers with h, m, s or ms.
GATEWAY_DURATION = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
ACME_PRODUCTION_EXAMPLE = "https://acme-v02.api.letsencrypt.org/directory"


def gateway_duration_ms(duration: str) -> int:
    """A Gateway API duration ("1m30s") in milliseconds."""
    unit_ms = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
    return sum(int(number) * unit_ms[unit] for number, unit in re.findall(r"([0-9]+)(ms|h|m|s)", duration))


class CertificateIssuer(CamelModel):
    """Where the public certificates come from: a local CA (self-signed root) or an ACME server (Let's Encrypt)."""

    kind: Literal["selfSigned", "acme"]
    server: Optional[str] = Field(default=None, pattern=r"^https://\S+$")  # the ACME directory URL
    email: Optional[str] = Field(default=None, pattern=EMAIL)  # the ACME account contact (expiry warnings)

    @model_validator(mode="after")
    def acme_needs_server_and_email(self) -> "CertificateIssuer":
        if self.kind == "acme":
            hints = {
                "server": f"server (the ACME directory URL, e.g. {ACME_PRODUCTION_EXAMPLE})",
                "email": "email (the account contact the CA writes to about expiring certificates)",
            }
            missing = [hints[key] for key, value in (("server", self.server), ("email", self.email)) if not value]
            if missing:
                raise ValueError(f"issuer kind 'acme' needs {' and '.join(missing)}")
        elif self.server or self.email:
            raise ValueError("issuer kind 'selfSigned' takes no 'server' or 'email' (those are for 'acme'); remove them")
        return self

    @property
    def is_acme_staging(self) -> bool:
        """An ACME staging directory (Let's Encrypt's and most others' have 'staging' in the URL): untrusted certs."""
        return self.kind == "acme" and "staging" in (self.server or "")


class RouteTimeouts(CamelModel):
    """HTTPRoute rule timeouts (Gateway API standard channel): the request limits every route gets."""

    request: str = Field(default="30s", pattern=GATEWAY_DURATION)  # the whole request, client to response
    backend_request: str = Field(default="15s", pattern=GATEWAY_DURATION)  # one try at the backend

    @model_validator(mode="after")
    def backend_within_request(self) -> "RouteTimeouts":
        # The CRD enforces this with a CEL rule, which offline schema validation does not run.
        if gateway_duration_ms(self.backend_request) > gateway_duration_ms(self.request):
            raise ValueError(f"backendRequest ({self.backend_request}) is longer than request ({self.request}); it must fit inside it")
        return self


class PathRoute(CamelModel):
    path: str = Field(pattern=r"^/[A-Za-z0-9/_.~%!$&'()*+,;=:@-]*$", max_length=1024)
    service: str = Field(pattern=DNS_LABEL)

    @field_validator("path")
    @classmethod
    def normalized_path(cls, path: str) -> str:
        if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
            raise ValueError(f"path '{path}' is not normalized ('//', '/./' or '/../'); write it as clients see it, e.g. '/api'")
        return path


class PublicHost(CamelModel):
    host: str = Field(pattern=HOSTNAME, max_length=253)  # no wildcards: HTTP-01 cannot issue them
    tls_secret_name: Optional[str] = Field(default=None, pattern=DNS_LABEL, max_length=63)
    routes: list[PathRoute] = Field(min_length=1)

    @model_validator(mode="after")
    def paths_unique(self) -> "PublicHost":
        paths = [route.path.rstrip("/") or "/" for route in self.routes]
        duplicates = sorted({path for path in paths if paths.count(path) > 1})
        if duplicates:
            raise ValueError(f"host '{self.host}' routes {duplicates} more than once; each path goes to one service")
        return self

    @property
    def slug(self) -> str:
        """The host as a DNS label, for object and listener names: www.example.com -> www-example-com."""
        return self.host.replace(".", "-")[:52].rstrip("-")

    @property
    def secret_name(self) -> str:
        return self.tls_secret_name or f"{self.slug}-tls"


class IngressConfig(CamelModel):
    """The public way in: Gateway API (default) or an Ingress, TLS from cert-manager, always."""

    mode: Literal["gateway", "ingress"] = "gateway"
    gateway_class_name: Optional[str] = Field(default=None, pattern=DNS_LABEL)
    ingress_class_name: Optional[str] = Field(default=None, pattern=DNS_LABEL)
    controller_namespace: str = Field(pattern=DNS_LABEL)  # where the gateway/ingress controller's proxies run
    controller_pod_labels: dict[str, str] = Field(default_factory=dict)  # narrows it to the proxy pods
    issuer: CertificateIssuer
    timeouts: RouteTimeouts = RouteTimeouts()
    annotations: dict[str, str] = Field(default_factory=dict)  # ingress mode: the controller's own limits
    hosts: list[PublicHost] = Field(min_length=1)

    @model_validator(mode="after")
    def fits_the_mode(self) -> "IngressConfig":
        problems = []
        if self.mode == "gateway":
            if not self.gateway_class_name:
                problems.append("mode 'gateway' needs 'gatewayClassName' (the GatewayClass of your controller, e.g. 'eg' for Envoy Gateway)")
            if self.annotations:
                problems.append("'annotations' are for mode 'ingress'; a Gateway's request limits are 'timeouts'")
        else:
            if not self.ingress_class_name:
                problems.append("mode 'ingress' needs 'ingressClassName' (the IngressClass of your controller, e.g. 'traefik')")
            if "timeouts" in self.model_fields_set:
                problems.append("'timeouts' are HTTPRoute fields (mode 'gateway'); in mode 'ingress' set your controller's annotations")
        hosts = [host.host for host in self.hosts]
        duplicates = sorted({host for host in hosts if hosts.count(host) > 1})
        if duplicates:
            problems.append(f"hosts {duplicates} appear more than once; list each host once with all its routes")
        slugs = [host.slug for host in self.hosts]
        if not duplicates and len(set(slugs)) != len(slugs):
            problems.append(f"hosts {hosts} give the same object name once dots become dashes; rename one")
        secrets = [host.secret_name for host in self.hosts]
        if len(set(secrets)) != len(secrets):
            problems.append(f"two hosts share a tlsSecretName ({sorted({s for s in secrets if secrets.count(s) > 1})}); each certificate needs its own Secret")
        bad = bad_labels(self.controller_pod_labels)
        if bad:
            problems.append(f"controllerPodLabels {bad} are not valid Kubernetes labels")
        bad_keys = [key for key in self.annotations if not re.match(LABEL_KEY, key)]
        if bad_keys:
            problems.append(f"annotations {bad_keys} are not valid annotation keys")
        if problems:
            raise ValueError("; ".join(problems))
        return self
