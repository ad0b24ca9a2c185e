"""The `monitoring` stack config key: what components.monitoring.Monitoring scrapes, alerts on, and where the
alerts go (`alerting`)."""

from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import Field, field_validator, model_validator

from components.config_base import CONFIG_KEY, DNS_LABEL, CamelModel, bad_labels

PROMETHEUS_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
PROMETHEUS_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"

# The severities the platform's alerts carry (components/monitoring.py): critical pages, warning makes a ticket.
SEVERITIES = ("critical", "warning")
# The receiver of the rendered route tree's root: alerts of the namespace that no route claims stop there (it sends
# nothing), so a stack's own receiver may not take the name.
UNROUTED_RECEIVER = "unrouted"
# A channel name (lowercase, with or without '#') or a channel ID, as Slack shows them.
SLACK_CHANNEL = r"^(#?[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{8,})$"
ALERTING_EXAMPLE = (
    "receivers: {pager: {pagerduty: {routingKeyKey: pagerduty-routing-key}}, "
    "tickets: {slack: {webhookUrlKey: slack-webhook-url, channel: '#platform-alerts'}}}"
)


class SloTargets(CamelModel):
    """Service level objectives every service with metrics is alerted on (error budget burn rates)."""

    availability_percent: float = Field(default=99.9, ge=90, lt=100)  # requests that are not 5xx
    latency_percent: float = Field(default=99.0, ge=50, lt=100)  # requests faster than latencySeconds
    latency_seconds: float = Field(default=0.5, gt=0, le=60)  # must be a bucket boundary of the histogram


class HttpMetricNames(CamelModel):
    """What the services call their HTTP metrics (the Prometheus client libraries' usual names by default)."""

    requests_total: str = Field(default="http_requests_total", pattern=METRIC_NAME)
    duration_bucket: str = Field(default="http_request_duration_seconds_bucket", pattern=METRIC_NAME)
    status_label: str = Field(default="code", pattern=PROMETHEUS_LABEL_NAME)


class DatabaseAlertThresholds(CamelModel):
    replication_lag_seconds: int = Field(default=30, ge=1)
    backup_max_age_hours: int = Field(default=26, ge=1)  # a daily backup plus slack
    storage_free_percent: int = Field(default=15, ge=1, le=50)


# A PagerDuty integration key: it has a key name's characters, but pasted where the name of its config key belongs
# it would be printed by the "missing key" error.
PAGERDUTY_KEY_SHAPE = re.compile(r"^[0-9a-f]{32}$")


def is_config_key_name(key: str) -> bool:
    return bool(re.fullmatch(CONFIG_KEY, key)) and not PAGERDUTY_KEY_SHAPE.match(key)


class PagerDutyReceiver(CamelModel):
    """PagerDuty's Events API v2: the routing key of an integration of the PagerDuty service to page."""

    routing_key_key: str  # the name of a secret config key

    @property
    def secret_key(self) -> str:
        return self.routing_key_key


class SlackReceiver(CamelModel):
    """A Slack incoming webhook; the channel is where the messages go."""

    webhook_url_key: str  # the name of a secret config key
    channel: str

    @property
    def secret_key(self) -> str:
        return self.webhook_url_key

    @field_validator("channel")
    @classmethod
    def slack_channel(cls, channel: str) -> str:
        if not re.fullmatch(SLACK_CHANNEL, channel):
            raise ValueError(
                "not a Slack channel: give its name, e.g. '#platform-alerts' (lowercase letters, digits, '-' and '_'), "
                "or its ID, e.g. 'C0123456789'"
            )
        return channel


class WebhookReceiver(CamelModel):
    """Alertmanager's webhook: a JSON POST per notification (ticket systems, chat bridges)."""

    url_key: str  # the name of a secret config key

    @property
    def secret_key(self) -> str:
        return self.url_key


# Per receiver kind: the field naming its secret config key, what that secret is, and a key name to suggest.
RECEIVER_SECRETS = {
    "pagerduty": ("routingKeyKey", "PagerDuty routing key", "pagerduty-routing-key"),
    "slack": ("webhookUrlKey", "Slack webhook URL", "slack-webhook-url"),
    "webhook": ("urlKey", "webhook URL", "alert-webhook-url"),
}


class AlertReceiver(CamelModel):
    pagerduty: Optional[PagerDutyReceiver] = None
    slack: Optional[SlackReceiver] = None
    webhook: Optional[WebhookReceiver] = None

    # Checked here rather than on the field: an error on the receiver does not print the field's value.
    @model_validator(mode="after")
    def one_destination_named_by_a_key(self) -> "AlertReceiver":
        kinds = [kind for kind in RECEIVER_SECRETS if getattr(self, kind) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a receiver is exactly one of 'pagerduty: {{routingKeyKey}}', 'slack: {{webhookUrlKey, channel}}' or "
                f"'webhook: {{urlKey}}' (found {kinds or 'none'}); make one receiver per destination"
            )
        field, what, example = RECEIVER_SECRETS[self.kind]
        if not is_config_key_name(self.secret_key):
            raise ValueError(
                f"{self.kind}.{field} names the secret config key holding the {what}; its value (not shown) is not a "
                f"key name (letters, digits, '_', '.' and '-'), or is the {what} itself. Set the {what} with "
                f"`pulumi config set --secret {example} <value>` and write '{example}' here"
            )
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in RECEIVER_SECRETS if getattr(self, kind) is not None)

    @property
    def secret_key(self) -> str:
        """The secret config key holding this receiver's credential."""
        return getattr(self, self.kind).secret_key


class AlertRoute(CamelModel):
    """Alerts of one severity go to one receiver (several routes may share a severity: each receiver is notified)."""

    severity: str
    receiver: str

    @field_validator("severity")
    @classmethod
    def platform_severity(cls, severity: str) -> str:
        if severity not in SEVERITIES:
            raise ValueError(
                "not a severity of the platform's alerts; route 'critical' (pages) or 'warning' (tickets)"
            )
        return severity


class AlertingConfig(CamelModel):
    """Where the stack's alerts go: named receivers, and routes from a severity to a receiver.

    Without `routes`, critical goes to a pager and warning to tickets: critical to the stack's only pagerduty
    receiver, warning to its only slack or webhook receiver. When that is not exactly one of each, `routes` must
    be written out (a config error says so), rather than guessing where a page should go.
    """

    receivers: dict[str, AlertReceiver]
    routes: Optional[list[AlertRoute]] = None

    @field_validator("receivers")
    @classmethod
    def named_receivers(cls, receivers: dict[str, AlertReceiver]) -> dict[str, AlertReceiver]:
        if not receivers:
            raise ValueError(f"no receivers: add at least one, e.g. {ALERTING_EXAMPLE}, or remove 'alerting'")
        for name in receivers:
            if not re.fullmatch(DNS_LABEL, name) or len(name) > 63:
                raise ValueError(
                    f"receiver name '{name}' must be a DNS label (lowercase letters, digits and '-', at most 63), e.g. 'pager'"
                )
            if name == UNROUTED_RECEIVER:
                raise ValueError(
                    f"receiver name '{UNROUTED_RECEIVER}' is taken by the route tree (alerts no route claims stop there); "
                    "choose another name"
                )
        return receivers

    @model_validator(mode="after")
    def routes_reach_receivers(self) -> "AlertingConfig":
        names = sorted(self.receivers)
        if self.routes is not None:
            if not self.routes:
                raise ValueError(
                    "routes is empty, so no alert would be sent; remove 'routes' for the defaults (critical to the "
                    "pagerduty receiver, warning to the slack or webhook receiver) or route at least one severity"
                )
            seen = set()
            for index, route in enumerate(self.routes):
                if route.receiver not in self.receivers:
                    raise ValueError(f"routes[{index}].receiver: '{route.receiver}' is not a receiver; route to one of {names}")
                if (route.severity, route.receiver) in seen:
                    raise ValueError(
                        f"routes[{index}] repeats severity '{route.severity}' to receiver '{route.receiver}'; remove it"
                    )
                seen.add((route.severity, route.receiver))
        routed = {route.receiver for route in self.effective_routes}
        unused = [name for name in names if name not in routed]
        if unused:
            raise ValueError(
                f"receivers {unused} get no alerts: no route names them. Route a severity to them, e.g. "
                f"routes: [{{severity: warning, receiver: {unused[0]}}}], or remove them"
            )
        return self

    @property
    def effective_routes(self) -> list[AlertRoute]:
        """The routes as written, or the defaults (critical to the pager, warning to tickets)."""
        if self.routes is not None:
            return list(self.routes)
        pagers = sorted(name for name, receiver in self.receivers.items() if receiver.kind == "pagerduty")
        tickets = sorted(name for name, receiver in self.receivers.items() if receiver.kind != "pagerduty")
        if len(pagers) != 1 or len(tickets) != 1:
            raise ValueError(
                "without 'routes', critical alerts go to the one pagerduty receiver and warning alerts to the one "
                f"slack or webhook receiver, but there are {len(pagers)} pagerduty ({pagers}) and {len(tickets)} "
                f"slack/webhook ({tickets}) receivers. Write the routes, e.g. routes: [{{severity: critical, "
                f"receiver: {(pagers or tickets)[0]}}}, {{severity: warning, receiver: {(tickets or pagers)[0]}}}]"
            )
        return [AlertRoute(severity="critical", receiver=pagers[0]), AlertRoute(severity="warning", receiver=tickets[0])]

    @property
    def secret_keys(self) -> list[str]:
        """The secret config keys the receivers name: the program reads each with `require_secret`."""
        return sorted({receiver.secret_key for receiver in self.receivers.values()})


def alerting_secret_keys(raw_monitoring: Any) -> dict[str, str]:
    """The secret config keys `monitoring.alerting` names, with what each is for, from the raw (possibly invalid)
    `monitoring` value: the stack config reports a missing or plaintext receiver key with every other problem,
    even when the rest does not validate. Values that are not key names are left to the model to report (without
    printing them)."""
    alerting = raw_monitoring.get("alerting") if isinstance(raw_monitoring, dict) else None
    receivers = alerting.get("receivers") if isinstance(alerting, dict) else None
    needed: dict[str, str] = {}
    for name, receiver in receivers.items() if isinstance(receivers, dict) else []:
        for kind, (field, what, _) in RECEIVER_SECRETS.items():
            settings = receiver.get(kind) if isinstance(receiver, dict) else None
            key = settings.get(field) if isinstance(settings, dict) else None
            if isinstance(key, str) and is_config_key_name(key):
                needed[key] = f"the {what} of alert receiver '{name}' (monitoring.alerting.receivers.{name}.{kind}.{field})"
    return needed


class MonitoringConfig(CamelModel):
    """Where Prometheus runs and how it finds what to scrape (kube-prometheus-stack's defaults unless set)."""

    namespace: str = Field(default="monitoring", pattern=DNS_LABEL)
    prometheus_pod_labels: dict[str, str] = Field(default_factory=lambda: {"app.kubernetes.io/name": "prometheus"})
    # kube-prometheus-stack selects ServiceMonitors, PodMonitors and PrometheusRules by `release: <release name>`.
    selector_labels: dict[str, str] = Field(default_factory=lambda: {"release": "kube-prometheus-stack"}, min_length=1)
    runbook_url_template: str = Field(default="https://runbooks.example.com/{alert}", pattern=r"^https://\S+$")
    scrape_interval: str = Field(default="30s", pattern=PROMETHEUS_DURATION)
    slo: SloTargets = SloTargets()
    http_metrics: HttpMetricNames = HttpMetricNames()
    databases: DatabaseAlertThresholds = DatabaseAlertThresholds()
    alerting: Optional[AlertingConfig] = None  # None: alerts stay in Alertmanager's own routing

    @field_validator("runbook_url_template")
    @classmethod
    def only_the_alert_placeholder(cls, template: str) -> str:
        import string

        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as error:  # a lone '{' or '}'
            raise ValueError(
                f"runbookUrlTemplate is not a template ({error}); write braces only around the placeholder: '{{alert}}'"
            ) from None
        fields = {name for _, name, _, _ in parsed if name is not None}
        if fields != {"alert"}:
            raise ValueError(f"runbookUrlTemplate needs exactly the placeholder '{{alert}}' (found {sorted(fields) or 'none'}), e.g. 'https://runbooks.example.com/{{alert}}'")
        # '{alert:d}' would fail when the alerts are written, '{alert!r}' or '{alert:>30}' put quotes or spaces in the URL.
        if any(spec or conversion for _, name, spec, conversion in parsed if name is not None):
            raise ValueError(
                "runbookUrlTemplate: write the placeholder as '{alert}', without a conversion ('!r') or format spec (':...')"
            )
        return template

    @field_validator("prometheus_pod_labels", "selector_labels")
    @classmethod
    def valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        bad = bad_labels(labels)
        if bad:
            raise ValueError(f"{bad} are not valid Kubernetes labels")
        return labels

    def runbook_url(self, alert: str) -> str:
        return self.runbook_url_template.format(alert=alert)
