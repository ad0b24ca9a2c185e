"""The `ingress` stack config key: the way in that components.ingress.Ingress makes (Gateway API or Ingress, TLS)."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from components.config_base import DNS_LABEL, IAM_ROLE_ARN, LABEL_KEY, CamelModel, bad_labels

# A wildcard is allowed only as the whole first label ("*.example.com"): what certificates, Ingress hosts and Gateway
# API hostnames all accept.
HOSTNAME = r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Object names that may contain dots (Gateway, ClusterIssuer names; listener section names).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
AWS_REGION = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"
ROUTE53_ZONE_ID = r"^[A-Z0-9]{1,32}$"
# Gateway API's Duration (GEP-2257), as its CRDs validate it: 1 to 4 numbers with h, m, s or ms.
GATEWAY_DURATION = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
ACME_PRODUCTION_EXAMPLE = "https://acme-v02.api.letsencrypt.org/directory"
HSTS_PRELOAD_MIN_AGE = 31_536_000


def gateway_duration_ms(duration: str) -> int:
    """A Gateway API duration ("1m30s") in milliseconds."""
    unit_ms = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
    return sum(int(number) * unit_ms[unit] for number, unit in re.findall(r"([0-9]+)(ms|h|m|s)", duration))


class Route53Solver(CamelModel):
    """cert-manager's ACME DNS-01 solver for Route53, on the credentials cert-manager's controller already has
    (IRSA on its ServiceAccount, instance profile): static keys have no field here, so none end up in config."""

    region: str = Field(pattern=AWS_REGION)
    # cert-manager's spelling; required so that the IAM policy can be narrowed to this one zone.
    hosted_zone_id: str = Field(alias="hostedZoneID", pattern=ROUTE53_ZONE_ID)
    role: Optional[str] = Field(default=None, pattern=IAM_ROLE_ARN)  # assumed from those credentials (e.g. the zone's account)


class Dns01Solver(CamelModel):
    route53: Route53Solver


class AcmeSolver(CamelModel):
    """How the ACME server is shown that we control a host. Absent: HTTP-01, through the Gateway or IngressClass."""

    dns01: Dns01Solver


class CertificateIssuer(CamelModel):
    """Where the public certificates come from: a local CA (self-signed root), an ACME server (Let's Encrypt) this
    stack registers with, or a ClusterIssuer the cluster's owners run."""

    # clusterIssuer first only so that the "unknown kind" message ends in "'selfSigned' or 'acme'", as it always has.
    kind: Literal["clusterIssuer", "selfSigned", "acme"]
    name: Optional[str] = Field(default=None, pattern=DNS_SUBDOMAIN, max_length=253)  # the ClusterIssuer's name
    server: Optional[str] = Field(default=None, pattern=r"^https://\S+$")  # the ACME directory URL
    email: Optional[str] = Field(default=None, pattern=EMAIL)  # the ACME account contact (expiry warnings)
    solver: Optional[AcmeSolver] = None

    @model_validator(mode="after")
    def fields_fit_the_kind(self) -> "CertificateIssuer":
        problems = []
        if self.kind == "acme":
            hints = {
                "server": f"server (the ACME directory URL, e.g. {ACME_PRODUCTION_EXAMPLE})",
                "email": "email (the account contact the CA writes to about expiring certificates)",
            }
            missing = [hints[key] for key, value in (("server", self.server), ("email", self.email)) if not value]
            if missing:
                problems.append(f"issuer kind 'acme' needs {' and '.join(missing)}")
        elif self.server or self.email:
            problems.append(f"issuer kind '{self.kind}' takes no 'server' or 'email' (those are for 'acme'); remove them")
        if self.kind == "clusterIssuer" and not self.name:
            problems.append(
                "issuer kind 'clusterIssuer' needs name (the ClusterIssuer your cluster's owners run, e.g. "
                "'letsencrypt-prod'; `kubectl get clusterissuers` lists them)"
            )
        if self.kind != "clusterIssuer" and self.name:
            problems.append(f"issuer kind '{self.kind}' takes no 'name' (it names a ClusterIssuer); remove it")
        if self.kind == "clusterIssuer" and self.solver:
            problems.append(
                "'solver' configures the ACME Issuer this stack makes (kind 'acme'); a ClusterIssuer's solvers are set "
                "on the ClusterIssuer by its owners: remove 'solver'"
            )
        elif self.kind == "selfSigned" and self.solver:
            problems.append("'solver' is for kind 'acme': a local CA signs without any challenge; remove it")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def solves_dns01(self) -> bool:
        return self.solver is not None

    @property
    def may_run_http01_solver_pods(self) -> bool:
        """Whether cert-manager may start HTTP-01 solver pods in this namespace: an ACME issuer of ours without
        DNS-01, or a ClusterIssuer, whose solvers we cannot see."""
        return (self.kind == "acme" and not self.solves_dns01) or self.kind == "clusterIssuer"

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


class Hsts(CamelModel):
    """The Strict-Transport-Security header on every HTTPS response: browsers then refuse plain HTTP to the host."""

    max_age_seconds: int = Field(default=31_536_000, ge=0)  # 0 tells browsers to forget the host (the way back out)
    include_sub_domains: bool = False  # every name under the host too: only when all of them serve HTTPS
    preload: bool = False  # consent to browsers' built-in lists (hstspreload.org), hard to undo

    @model_validator(mode="after")
    def preload_meets_the_list_rules(self) -> "Hsts":
        if self.preload and (not self.include_sub_domains or self.max_age_seconds < HSTS_PRELOAD_MIN_AGE):
            raise ValueError(
                f"preload is accepted by browsers' preload lists (hstspreload.org) only with includeSubDomains: true and "
                f"maxAgeSeconds of at least {HSTS_PRELOAD_MIN_AGE} (one year); set both, or drop preload"
            )
        return self

    @property
    def header_value(self) -> str:
        directives = [f"max-age={self.max_age_seconds}"]
        directives += ["includeSubDomains"] if self.include_sub_domains else []
        directives += ["preload"] if self.preload else []
        return "; ".join(directives)

    def ingress_annotations(self) -> dict[str, str]:
        """HSTS for an Ingress, for the controllers that take it per Ingress: F5 NGINX Ingress Controller (which adds
        `preload` whatever we say) and HAProxy Ingress. Each controller ignores the other's annotations."""
        include_sub_domains, preload = str(self.include_sub_domains).lower(), str(self.preload).lower()
        return {
            "nginx.org/hsts": "true",
            "nginx.org/hsts-max-age": str(self.max_age_seconds),
            "nginx.org/hsts-include-subdomains": include_sub_domains,
            "haproxy-ingress.github.io/hsts": "true",
            "haproxy-ingress.github.io/hsts-max-age": str(self.max_age_seconds),
            "haproxy-ingress.github.io/hsts-include-subdomains": include_sub_domains,
            "haproxy-ingress.github.io/hsts-preload": preload,
        }


class GatewayRef(CamelModel):
    """A Gateway the cluster's owners run, which this stack's HTTPRoutes attach to instead of a Gateway of its own."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    namespace: str = Field(pattern=DNS_LABEL, max_length=63)
    # Its HTTPS listener. Required: without one a route attaches to every listener that admits it, plain HTTP included.
    section_name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)


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
    host: str = Field(pattern=HOSTNAME, max_length=253)  # a wildcard needs DNS-01: IngressConfig checks the issuer
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
    def is_wildcard(self) -> bool:
        return self.host.startswith("*.")

    @property
    def slug(self) -> str:
        """The host as a DNS label, for object and listener names: www.example.com -> www-example-com,
        *.example.com -> wildcard-example-com."""
        return self.host.replace("*", "wildcard", 1).replace(".", "-")[:52].rstrip("-")

    @property
    def secret_name(self) -> str:
        return self.tls_secret_name or f"{self.slug}-tls"


class IngressConfig(CamelModel):
    """The public way in: Gateway API (default) or an Ingress, TLS from cert-manager, always."""

    mode: Literal["gateway", "ingress"] = "gateway"
    gateway_class_name: Optional[str] = Field(default=None, pattern=DNS_LABEL)
    gateway_ref: Optional[GatewayRef] = None  # a shared Gateway to attach to, instead of making one
    ingress_class_name: Optional[str] = Field(default=None, pattern=DNS_LABEL)
    controller_namespace: str = Field(pattern=DNS_LABEL)  # where the gateway/ingress controller's proxies run
    controller_pod_labels: dict[str, str] = Field(default_factory=dict)  # narrows it to the proxy pods
    # None only with gatewayRef: the shared Gateway's listener then terminates TLS with its owners' certificate.
    issuer: Optional[CertificateIssuer] = None
    timeouts: RouteTimeouts = RouteTimeouts()
    hsts: Hsts = Hsts()
    annotations: dict[str, str] = Field(default_factory=dict)  # ingress mode: the controller's own limits
    hosts: list[PublicHost] = Field(min_length=1)

    @field_validator("hosts")
    @classmethod
    def wildcards_need_dns01(cls, hosts: list[PublicHost], info: ValidationInfo) -> list[PublicHost]:
        """A wildcard certificate is issued only to whoever proves control of the DNS zone (DNS-01), which an ACME
        issuer of ours does with `solver.dns01`, and a ClusterIssuer may (its owners configure it; we cannot see it).

        Reported at each host (`ingress.hosts[1].host`), hence a ValidationError with its own locations, which
        pydantic-core nests under `hosts` (pydantic/pydantic-core#510); tests/test_ingress_shared.py pins that.
        """
        issuer = info.data.get("issuer")
        if issuer is None or issuer.kind == "clusterIssuer" or issuer.solves_dns01:
            return hosts  # no certificate of ours (the shared Gateway's), or one whose issuer can prove a zone
        fix = (
            "which ACME certifies only after a DNS-01 challenge (HTTP-01 cannot prove a whole zone): give the issuer "
            "solver: {dns01: {route53: {region, hostedZoneID}}}, use kind: clusterIssuer with a ClusterIssuer that "
            "solves DNS-01, or list the hosts one by one"
            if issuer.kind == "acme"
            else "which public issuers certify only after a DNS-01 challenge; the local CA would sign it, but the local "
            "stack keeps to hosts that staging and prod could serve: list the hosts one by one"
        )
        wildcards = [
            InitErrorDetails(
                type=PydanticCustomError("value_error", "'{host}' is a wildcard, {fix}", {"host": host.host, "fix": fix}),
                loc=(index, "host"),
                input=host.host,
            )
            for index, host in enumerate(hosts)
            if host.is_wildcard
        ]
        if wildcards:
            raise ValidationError.from_exception_data(cls.__name__, wildcards)
        return hosts

    @model_validator(mode="after")
    def fits_the_mode(self) -> "IngressConfig":
        problems = []
        if self.mode == "gateway":
            if self.gateway_ref and self.gateway_class_name:
                problems.append(
                    "'gatewayClassName' is for the Gateway this stack makes; with 'gatewayRef' the shared Gateway's "
                    "owners chose its class: remove 'gatewayClassName'"
                )
            elif not self.gateway_ref and not self.gateway_class_name:
                problems.append(
                    "mode 'gateway' needs 'gatewayClassName' (the GatewayClass of your controller, e.g. 'eg' for Envoy "
                    "Gateway), or 'gatewayRef' to attach to a Gateway your cluster's owners run"
                )
            if self.annotations:
                problems.append("'annotations' are for mode 'ingress'; a Gateway's request limits are 'timeouts'")
        else:
            if not self.ingress_class_name:
                problems.append("mode 'ingress' needs 'ingressClassName' (the IngressClass of your controller, e.g. 'traefik')")
            if "timeouts" in self.model_fields_set:
                problems.append("'timeouts' are HTTPRoute fields (mode 'gateway'); in mode 'ingress' set your controller's annotations")
            if self.gateway_ref:
                problems.append(
                    "'gatewayRef' attaches HTTPRoutes to a shared Gateway, which is mode 'gateway'; set mode: gateway, "
                    "or remove 'gatewayRef' to serve through an Ingress"
                )
        if self.issuer is None and not self.gateway_ref:
            problems.append(
                "'issuer' is missing: every host gets a certificate from it (kind selfSigned, acme or clusterIssuer); "
                "only with 'gatewayRef' may it be left out, when the shared Gateway terminates TLS with its owners' certificate"
            )
        managed = sorted(set(self.annotations) & set(self.hsts.ingress_annotations()))
        if managed:
            problems.append(f"annotations {managed} are set from 'hsts' (maxAgeSeconds, includeSubDomains, preload); remove them there")
        hosts = [host.host for host in self.hosts]
        duplicates = sorted({host for host in hosts if hosts.count(host) > 1})
        if duplicates:
            problems.append(f"hosts {duplicates} appear more than once; list each host once with all its routes")
        slugs = [host.slug for host in self.hosts]
        if not duplicates and len(set(slugs)) != len(slugs):
            problems.append(f"hosts {hosts} give the same object name once dots become dashes (and '*' becomes 'wildcard'); rename one")
        secrets = [host.secret_name for host in self.hosts]
        if len(set(secrets)) != len(secrets):
            problems.append(f"two hosts share a tlsSecretName ({sorted({s for s in secrets if secrets.count(s) > 1})}); each certificate needs its own Secret")
        bad = bad_labels(self.controller_pod_labels)
        if bad:
            problems.append(f"controllerPodLabels {bad} are not valid Kubernetes labels")
        bad_keys = [key for key in self.annotations if not re.fullmatch(LABEL_KEY, key)]
        if bad_keys:
            problems.append(f"annotations {bad_keys} are not valid annotation keys")
        if problems:
            raise ValueError("; ".join(problems))
        return self
