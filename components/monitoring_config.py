"""The `monitoring` stack config key: what components.monitoring.Monitoring scrapes and alerts on."""

from __future__ import annotations

from pydantic import Field, field_validator

from components.config_base import DNS_LABEL, CamelModel, bad_labels

PROMETHEUS_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
PROMETHEUS_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


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
