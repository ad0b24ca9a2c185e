"""Stack config validation: every bad input is reported at once, with the stack file, the key and the fix."""

from __future__ import annotations

import copy
import json

import pytest

import stack_config
from tools import engine

PROJECT = "platform"


def stack_values(stack: str) -> tuple[dict, set[str]]:
    """The stack file's config as `load` reads it: key -> parsed value, and the secret keys."""
    config, secret_keys = engine.stack_config(stack)
    values = {}
    for full_key, raw in config.items():
        key = full_key.split(":", 1)[1]
        values[key] = json.loads(raw) if raw[:1] in "{[" else raw
    return values, {key.split(":", 1)[1] for key in secret_keys}


def load(values: dict, secret_keys: set[str], stack: str = "local") -> stack_config.StackConfig:
    def read_value(key):
        if key not in values:
            return None
        value = values[key]
        return value if isinstance(value, str) else json.dumps(value)

    config_keys = {f"{PROJECT}:{key}" for key in values}
    return stack_config.load(stack, PROJECT, read_value, lambda key: key in secret_keys, config_keys)


def problems_for(mutate, stack: str = "local") -> list[str]:
    values, secret_keys = stack_values(stack)
    values = copy.deepcopy(values)
    mutate(values, secret_keys)
    with pytest.raises(stack_config.ConfigError) as raised:
        load(values, secret_keys, stack)
    assert str(raised.value).startswith(f"Pulumi.{stack}.yaml has ")
    return raised.value.problems


def web(values):
    return values["services"][0]


def api(values):
    return values["services"][1]


def orders(values):
    return values["databases"][0]


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_shipped_stack_files_are_valid(stack):
    values, secret_keys = stack_values(stack)
    config = load(values, secret_keys, stack)
    assert config.environment.value == stack
    workloads = [("web", "web"), ("api", "web")] + ([("analytics", "worker"), ("report", "cron")] if stack != "local" else [])
    assert [(service.name, service.kind) for service in config.services] == workloads


BAD_INPUTS = [
    # (id, mutation, expected fragments of one problem)
    ("latest-tag", lambda v, s: web(v).update(image="web:latest"), ["platform:services[0].image", "mutable tag 'latest'", "web:1.2.3"]),
    ("no-tag", lambda v, s: web(v).update(image="web"), ["platform:services[0].image", "has no tag", "web:1.2.3"]),
    ("privileged-port", lambda v, s: web(v).update(port=80), ["platform:services[0].port", "greater than or equal to 1024"]),
    ("zero-replicas", lambda v, s: web(v).update(replicas=0), ["platform:services[0].replicas", "greater than or equal to 1"]),
    ("default-namespace", lambda v, s: v.update(namespace="default"), ["platform:namespace", "shared with the cluster"]),
    ("kube-namespace", lambda v, s: v.update(namespace="kube-system"), ["platform:namespace", "shared with the cluster"]),
    ("typo-key", lambda v, s: web(v).update(replica=2), ["platform:services[0].replica", "unknown key"]),
    ("missing-services", lambda v, s: v.pop("services"), ["platform:services", "missing", "pulumi config set --stack local 'services'"]),
    ("missing-nested", lambda v, s: web(v).pop("resources"), ["platform:services[0].resources", "--path 'services[0].resources'"]),
    ("bad-environment", lambda v, s: v.update(environment="production"), ["platform:environment", "'local', 'staging' or 'prod'"]),
    ("two-cluster-targets", lambda v, s: v["kubernetes"].update(kubeconfigSecretKey="kubeconfig"), ["platform:kubernetes", "exactly one of 'context'"]),
    ("render-without-ack", lambda v, s: v["kubernetes"].update(renderDirectory="rendered"), ["platform:kubernetes", "renderSecretsInPlaintext: true"]),
    ("no-cluster-target", lambda v, s: v.update(kubernetes={}), ["platform:kubernetes", "or 'renderDirectory'"]),
    ("pss-version", lambda v, s: v.update(podSecurity={"version": "1.30"}), ["platform:podSecurity.version", "not a Kubernetes minor version such as v1.33"]),
    ("autoscaling-bounds", lambda v, s: web(v).update(autoscaling={"minReplicas": 5, "maxReplicas": 2}), ["maxReplicas (2) is below minReplicas (5)"]),
    ("unknown-callee", lambda v, s: web(v).update(calls=["db"]), ["service 'web' calls ['db']"]),
    ("duplicate-names", lambda v, s: api(v).update(name="web"), ["names must be unique", "['web']"]),
    ("bad-quantity", lambda v, s: web(v)["resources"]["limits"].update(cpu="lots"), ["platform:services[0].resources.limits.cpu", "'lots'"]),
    ("bad-env-name", lambda v, s: web(v)["env"].update({"1BAD": "x"}), ["platform:services[0].env", "invalid environment variable name"]),
    ("env-and-secret-env", lambda v, s: web(v)["env"].update(SESSION_KEY="x"), ["['SESSION_KEY'] are in both 'env' and 'secretEnv'"]),
    ("uppercase-name", lambda v, s: web(v).update(name="Web"), ["platform:services[0].name", "not lower-case letters, digits and '-', starting with a letter"]),
    ("not-json", lambda v, s: v.update(services="[{broken"), ["platform:services: not valid structured config"]),
    ("root-uid", lambda v, s: web(v).update(runAsUser=0), ["platform:services[0].runAsUser", "greater than or equal to 1"]),
    (
        "plaintext-secret",
        lambda v, s: s.discard("api-token"),
        ["platform:api-token", "stored in plaintext in Pulumi.local.yaml", "secret env API_TOKEN of service 'api'",
         "pulumi config set --secret --stack local api-token <value>"],
    ),
    (
        "missing-secret",
        lambda v, s: v.pop("api-token"),
        ["platform:api-token: missing", "pulumi config set --secret --stack local api-token <value>"],
    ),
    (
        "secret-in-plain-env",
        lambda v, s: api(v)["env"].update(DB_PASSWORD="hunter2"),
        ["platform:services[1].env.DB_PASSWORD: holds a literal value under a secret-sounding name",
         "pulumi config set --secret --stack local api-db-password <value>", "'secretEnv' (DB_PASSWORD: api-db-password)"],
    ),
    # databases and their backups
    ("db-unknown-user", lambda v, s: orders(v).update(usedBy=["wbe"]), ["databases[0].usedBy", "used by ['wbe']"]),
    ("db-named-like-a-service", lambda v, s: orders(v).update(name="api"), ["platform:databases[0].name: 'api' would make", "which services[1] ('api') makes too"]),
    ("db-five-field-cron", lambda v, s: orders(v).update(backup={"schedule": "0 3 * * *"}), ["platform:databases[0].backup.schedule", "six cron fields", "'0 0 3 * * *'"]),
    ("db-fixed-parameter", lambda v, s: orders(v)["parameters"].update(port=5433), ["platform:databases[0].parameters", "['port'] are managed by CloudNativePG"]),
    ("db-bad-storage-size", lambda v, s: orders(v)["storage"].update(size="lots"), ["platform:databases[0].storage.size", "'lots'"]),
    ("db-bad-owner", lambda v, s: orders(v).update(owner="Order-Owner"), ["platform:databases[0].owner", "not a PostgreSQL name"]),
    ("db-env-set-by-hand", lambda v, s: api(v)["env"].update(DATABASE_HOST="db"), ["service 'api' sets ['DATABASE_HOST'] itself"]),
    ("db-no-api-server", lambda v, s: v["cnpg"].update(apiServerCidrs=[]), ["cnpg.apiServerCidrs", "Kubernetes API server"]),
    ("db-bad-cidr", lambda v, s: v["cnpg"].update(apiServerCidrs=["10.96.0.1/99"]), ["platform:cnpg.apiServerCidrs", "not CIDRs"]),
    ("backup-bad-bucket", lambda v, s: v["backups"].update(bucket="Backups_Bucket"), ["platform:backups.bucket", "lowercase letters"]),
    ("backup-bad-aws-region", lambda v, s: v["backups"].update(endpoint=None, region="eu_west"), ["platform:backups", "'eu_west' is not an AWS region name"]),
    ("backup-bad-encryption", lambda v, s: v["backups"].update(encryption="none"), ["platform:backups.encryption", "'AES256' or 'aws:kms'"]),
    (
        "backup-two-kinds-of-credentials",
        lambda v, s: v["backups"]["credentials"].update(iamRole=True),
        ["platform:backups.credentials", "either 'iamRole: true' or the static key names"],
    ),
    (
        "backup-key-in-plaintext",
        lambda v, s: s.discard("backup-secret-access-key"),
        ["platform:backup-secret-access-key: stored in plaintext in Pulumi.local.yaml", "backup bucket",
         "pulumi config set --secret --stack local backup-secret-access-key <value>"],
    ),
    (
        "backup-key-missing",
        lambda v, s: v.pop("backup-access-key-id"),
        ["platform:backup-access-key-id: missing", "access key id of the database backup bucket"],
    ),
]


@pytest.mark.parametrize("case_id, mutate, fragments", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_explained(case_id, mutate, fragments):
    problems = problems_for(mutate)
    assert any(all(fragment in problem for fragment in fragments) for problem in problems), problems


def test_staging_needs_two_replicas():
    problems = problems_for(lambda v, s: web(v).update(replicas=1), stack="staging")
    assert any("service 'web' runs 1 replica(s); staging needs at least 2" in problem for problem in problems)


def test_prod_needs_autoscaling_and_three_replicas():
    def mutate(values, secret_keys):
        web(values).pop("autoscaling")
        web(values)["replicas"] = 2

    problems = problems_for(mutate, stack="prod")
    joined = "\n".join(problems)
    assert "service 'web' runs 2 replica(s); prod needs at least 3" in joined
    assert "service 'web' needs 'autoscaling' in prod" in joined


def test_kubeconfig_secret_must_be_encrypted():
    problems = problems_for(lambda v, s: s.discard("kubeconfig"), stack="prod")
    assert any("platform:kubeconfig: stored in plaintext" in p and "the kubeconfig of the target cluster" in p for p in problems)


def test_all_problems_are_reported_at_once():
    def mutate(values, secret_keys):
        web(values)["image"] = "web:latest"
        api(values)["port"] = 22
        values["namespace"] = "default"
        secret_keys.discard("web-session-key")

    problems = problems_for(mutate)
    assert len(problems) == 4
    assert [p.split(":")[1].split(" ")[0] for p in problems] == [
        "namespace",
        "services[0].image",
        "services[1].port",
        "web-session-key",
    ]


def test_registry_is_prefixed_unless_the_image_names_one():
    values, secret_keys = stack_values("local")
    web(values)["image"] = "registry.example.com/team/web:1.0.0"
    config = load(values, secret_keys)
    assert config.pulled(config.services[0].image) == "registry.example.com/team/web:1.0.0"
    assert config.pulled(config.services[1].image) == "ghcr.io/example-org/api:2.0.1"


def test_program_stops_before_registering_anything_on_plaintext_secret():
    config, secret_keys = engine.stack_config("local")
    plaintext = [key for key in secret_keys if key != "platform:api-token"]
    with pytest.raises(engine.ProgramError) as raised:
        engine.render("local", config=config, secret_keys=plaintext)
    message = str(raised.value)
    assert "platform:api-token: stored in plaintext in Pulumi.local.yaml" in message
    assert "pulumi config set --secret --stack local api-token <value>" in message
    assert raised.value.registered == []


def test_staging_databases_need_two_instances():
    problems = problems_for(lambda v, s: orders(v).update(instances=1), stack="staging")
    assert any(
        p.startswith("platform:databases[0].instances: database 'orders' runs 1 instance(s); staging needs at least 2")
        for p in problems
    ), problems


def test_prod_databases_need_three_instances_and_backups_reported_together():
    def mutate(values, secret_keys):
        orders(values)["instances"] = 2
        values.pop("backups")
        web(values)["image"] = "web:latest"

    problems = problems_for(mutate, stack="prod")
    joined = "\n".join(problems)
    assert "platform:databases[0].instances: database 'orders' runs 2 instance(s); prod needs at least 3" in joined
    assert "`pulumi config set --stack prod --path 'databases[0].instances' 3`" in joined
    assert "platform:backups: missing; prod databases must be backed up" in joined
    assert "platform:services[0].image" in joined  # alongside every other problem


def test_prod_databases_cannot_opt_out_of_backups():
    problems = problems_for(lambda v, s: orders(v).update(backup={"enabled": False}), stack="prod")
    assert any(p.startswith("platform:databases[0].backup.enabled: database 'orders' is not backed up") for p in problems)


def test_a_staging_database_may_skip_backups():
    values, secret_keys = stack_values("staging")
    orders(values)["backup"] = {"enabled": False}
    config = load(values, secret_keys, "staging")
    assert not config.backs_up(config.databases[0])


# --- ingress, monitoring and add-ons ------------------------------------------------------------------------------


def ingress(values):
    return values["ingress"]


def shop_routes(values):
    return values["ingress"]["hosts"][0]["routes"]


EDGE_BAD_INPUTS = [
    # (id, stack, mutation, expected fragments of one problem)
    ("route-to-unknown-service", "local", lambda v, s: shop_routes(v)[1].update(service="admin"),
     ["platform:ingress.hosts[0].routes[1].service", "'admin' is not a service of this stack", "['api', 'web']"]),
    ("acme-without-email", "local", lambda v, s: ingress(v).update(issuer={"kind": "acme", "server": "https://acme.example.org/directory"}),
     ["platform:ingress.issuer", "issuer kind 'acme' needs email"]),
    ("self-signed-with-server", "local", lambda v, s: ingress(v)["issuer"].update(email="ops@example.org"),
     ["platform:ingress.issuer", "takes no 'server' or 'email'"]),
    ("unknown-issuer-kind", "local", lambda v, s: ingress(v)["issuer"].update(kind="vault"),
     ["platform:ingress.issuer.kind", "'selfSigned' or 'acme'"]),
    ("gateway-without-class", "local", lambda v, s: ingress(v).pop("gatewayClassName"),
     ["platform:ingress", "mode 'gateway' needs 'gatewayClassName'"]),
    ("ingress-without-class", "local", lambda v, s: (ingress(v).update(mode="ingress"), ingress(v).pop("timeouts")),
     ["platform:ingress", "mode 'ingress' needs 'ingressClassName'"]),
    ("timeouts-in-ingress-mode", "local", lambda v, s: ingress(v).update(mode="ingress", ingressClassName="traefik"),
     ["platform:ingress", "'timeouts' are HTTPRoute fields"]),
    ("backend-longer-than-request", "local", lambda v, s: ingress(v).update(timeouts={"request": "30s", "backendRequest": "1m"}),
     ["platform:ingress.timeouts", "backendRequest (1m) is longer than request (30s)"]),
    ("bad-duration", "local", lambda v, s: ingress(v).update(timeouts={"request": "30 seconds"}),
     ["platform:ingress.timeouts.request", "not a Gateway API duration", "'30 seconds'"]),
    ("wildcard-host", "local", lambda v, s: ingress(v)["hosts"][0].update(host="*.localtest.me"),
     ["platform:ingress.hosts[0].host", "'*.localtest.me'"]),
    ("duplicate-path", "local", lambda v, s: shop_routes(v).append({"path": "/api/", "service": "web"}),
     ["platform:ingress.hosts[0]", "routes ['/api'] more than once"]),
    ("unnormalized-path", "local", lambda v, s: shop_routes(v)[1].update(path="/api//v1"),
     ["platform:ingress.hosts[0].routes[1].path", "not normalized"]),
    ("duplicate-host", "local", lambda v, s: ingress(v)["hosts"].append(dict(ingress(v)["hosts"][0])),
     ["platform:ingress", "['platform.localtest.me'] appear more than once"]),
    ("no-hosts", "local", lambda v, s: ingress(v).update(hosts=[]),
     ["platform:ingress.hosts", "at least 1 item"]),
    ("runbook-without-placeholder", "local", lambda v, s: v["monitoring"].update(runbookUrlTemplate="https://runbooks.example.com/"),
     ["platform:monitoring.runbookUrlTemplate", "placeholder '{alert}'"]),
    ("runbook-unknown-placeholder", "local", lambda v, s: v["monitoring"].update(runbookUrlTemplate="https://x.example.com/{service}/{alert}"),
     ["platform:monitoring.runbookUrlTemplate", "['alert', 'service']"]),
    ("bad-selector-label", "local", lambda v, s: v["monitoring"].update(selectorLabels={"release": "kube prometheus"}),
     ["platform:monitoring.selectorLabels", "not valid Kubernetes labels"]),
    ("perfect-slo", "local", lambda v, s: v["monitoring"].update(slo={"availabilityPercent": 100}),
     ["platform:monitoring.slo.availabilityPercent", "less than 100"]),
    ("bad-metric-name", "local", lambda v, s: v["monitoring"].update(httpMetrics={"requestsTotal": "http-requests"}),
     ["platform:monitoring.httpMetrics.requestsTotal", "not a Prometheus metric name"]),
    ("cnpg-without-cert-manager", "local", lambda v, s: v["addons"].update(certManager=False),
     ["platform:addons.cnpg", "set addons.certManager: true"]),
    ("addons-typo", "local", lambda v, s: v["addons"].update(certmanager=True),
     ["platform:addons.certmanager", "unknown key"]),
    ("addons-in-staging", "staging", lambda v, s: v.update(addons={"kubePrometheusStack": True}),
     ["platform:addons", "['kubePrometheusStack']", "only the local stack installs add-ons", "Pulumi.staging.yaml"]),
    ("self-signed-in-prod", "prod", lambda v, s: ingress(v).update(issuer={"kind": "selfSigned"}),
     ["platform:ingress.issuer.kind", "do not trust a local CA", "https://acme-v02.api.letsencrypt.org/directory"]),
    ("acme-staging-in-prod", "prod",
     lambda v, s: ingress(v).update(issuer={"kind": "acme", "server": "https://acme-staging-v02.api.letsencrypt.org/directory", "email": "ops@example.org"}),
     ["platform:ingress.issuer.server", "ACME staging directory"]),
    ("staging-cluster-issuer-in-prod", "prod", lambda v, s: ingress(v).update(issuer={"kind": "clusterIssuer", "name": "letsencrypt-staging"}),
     ["platform:ingress.issuer.name", "'letsencrypt-staging' looks like a staging or self-signed ClusterIssuer"]),
    # Issue #11's bad inputs, through the whole load, as a user meets them.
    ("wildcard-host-without-dns01", "staging", lambda v, s: ingress(v)["hosts"][0].update(host="*.example.com"),
     ["platform:ingress.hosts[0].host", "DNS-01"]),
    ("internet-without-allow", "staging", lambda v, s: api(v).update(egress=[{"name": "anywhere", "cidrs": ["0.0.0.0/0"], "ports": [{"port": 443}]}]),
     ["platform:services[1].egress[0]", "allowInternet"]),
    ("receiver-key-missing", "prod", lambda v, s: (v.pop("pagerduty-routing-key"), s.discard("pagerduty-routing-key")),
     ["platform:pagerduty-routing-key: missing", "alert receiver 'pager'", "pulumi config set --secret --stack prod pagerduty-routing-key"]),
    ("receiver-key-in-plaintext", "prod", lambda v, s: s.discard("slack-webhook-url"),
     ["platform:slack-webhook-url: stored in plaintext in Pulumi.prod.yaml", "pulumi config set --secret --stack prod slack-webhook-url"]),
    ("unknown-access-role", "prod", lambda v, s: v["access"][0].update(role="admin"),
     ["platform:access[0].role", "view", "edit", "deployer", "(got 'admin')"]),
    ("irsa-with-an-endpoint", "staging", lambda v, s: v["backups"].update(endpoint="https://minio.example.com"),
     ["platform:backups", "needs the database pods to reach AWS STS", "use static keys"]),
    ("access-role-not-text", "prod", lambda v, s: v["access"][0].update(role=["edit"]),
     ["platform:access[0].role", "unknown role; use one of: view"]),
]


@pytest.mark.parametrize("case_id, stack, mutate, fragments", EDGE_BAD_INPUTS, ids=[case[0] for case in EDGE_BAD_INPUTS])
def test_bad_ingress_monitoring_or_addons_input_is_explained(case_id, stack, mutate, fragments):
    problems = problems_for(mutate, stack=stack)
    assert any(all(fragment in problem for fragment in fragments) for problem in problems), problems


def test_edge_problems_come_with_every_other_problem():
    def mutate(values, secret_keys):
        web(values)["image"] = "web:latest"
        shop_routes(values)[0]["service"] = "frontend"
        values["monitoring"]["slo"] = {"latencySeconds": 0}
        values["addons"]["certManager"] = False

    joined = "\n".join(problems_for(mutate))
    assert "platform:services[0].image" in joined
    assert "platform:ingress.hosts[0].routes[0].service: 'frontend'" in joined
    assert "platform:monitoring.slo.latencySeconds" in joined
    assert "platform:addons.cnpg" in joined


def test_ingress_is_optional_and_monitoring_has_defaults():
    values, secret_keys = stack_values("staging")
    values.pop("ingress")
    values.pop("monitoring")
    config = load(values, secret_keys, "staging")
    assert config.ingress is None
    assert config.monitoring.selector_labels == {"release": "kube-prometheus-stack"}
    assert config.monitoring.runbook_url("PodNotReady") == "https://runbooks.example.com/PodNotReady"
    assert not config.addons.any


def test_render_directory_goes_to_the_kubernetes_provider_without_a_cluster():
    config, secret_keys = engine.stack_config("local")
    config["platform:kubernetes"] = json.dumps({"renderDirectory": "build/rendered", "renderSecretsInPlaintext": True})
    rendering = engine.render("local", config=config, secret_keys=secret_keys)
    (provider,) = rendering.of_type("pulumi:providers:kubernetes")
    assert provider.inputs.get("renderYamlToDirectory") == "build/rendered"
    assert "context" not in provider.inputs and "kubeconfig" not in provider.inputs


# --- found by the fuzzer (tests/test_fuzz_config.py): each was a crash or a config that loaded but did not deploy ---


@pytest.mark.parametrize("environment", [["prod"], {"name": "prod"}])
def test_regression_environment_as_a_list_or_mapping_is_a_config_error(environment):
    """Was a TypeError (unhashable list) from the data-safety check instead of a ConfigError."""
    problems = problems_for(lambda v, s: v.update(environment=environment))
    assert any(p.startswith("platform:environment: ") and "'local', 'staging' or 'prod'" in p for p in problems), problems


def test_regression_odd_key_names_are_quoted_in_the_key_path():
    """An unknown key with a dot, a space or a control character used to make an unreadable path (`kubernetes.\r`)."""

    def mutate(values, secret_keys):
        values["kubernetes"]["\r"] = 1
        values["kubernetes"]["my.context"] = "x"
        web(values)["env"]["A B"] = 1

    joined = "\n".join(problems_for(mutate))
    assert 'platform:kubernetes["\\r"]: unknown key' in joined
    assert 'platform:kubernetes["my.context"]: unknown key' in joined
    assert 'platform:services[0].env["A B"]: Input should be a valid string' in joined


@pytest.mark.parametrize("template", ["https://runbooks.example.com/{alert:d}", "https://runbooks.example.com/{alert!r}", "https://x.example.com/{alert:>30}", "https://x.example.com/{alert"])
def test_regression_runbook_template_with_a_format_spec_is_refused(template):
    """'{alert:d}' loaded, then the program crashed writing the alerts (ValueError: Unknown format code 'd')."""
    problems = problems_for(lambda v, s: v["monitoring"].update(runbookUrlTemplate=template))
    assert any(p.startswith("platform:monitoring.runbookUrlTemplate: ") and "'{alert}'" in p for p in problems), problems


def test_regression_service_name_starting_with_a_digit_is_refused():
    """'0' is a DNS label, so it loaded, but the Service named after it is not a DNS-1035 label: the API refuses it."""
    problems = problems_for(lambda v, s: (web(v).update(name="0web"), v["ingress"]["hosts"][0]["routes"][0].update(service="0web")))
    assert any(p.startswith("platform:services[0].name: not lower-case letters") for p in problems), problems


def test_regression_prod_images_pinned_by_tag_are_refused():
    """'web:1.4.2' loaded in prod, then the pack (requireDigest in policies/config/prod.json) blocked the deployment."""
    problems = problems_for(lambda v, s: web(v).update(image="registry.example.com:5000/team/web:1.4.2"), stack="prod")
    [problem] = [p for p in problems if p.startswith("platform:services[0].image: ")]
    assert "prod pins images by digest" in problem
    assert "`pulumi config set --stack prod --path 'services[0].image' 'registry.example.com:5000/team/web@sha256:<digest>'`" in problem
    values, secret_keys = stack_values("staging")
    assert load(values, secret_keys, "staging").services[0].image == "web:1.4.2"  # tags stay fine outside prod


def test_pod_security_version_reaches_the_namespace_and_the_pack_judges_at_it():
    from tools import analyzer

    config, secret_keys = engine.stack_config("local")
    config["platform:podSecurity"] = json.dumps({"version": "v1.22"})
    rendering = engine.render("local", config=config, secret_keys=secret_keys)
    (namespace,) = [r for r in rendering.resources if r.type == "kubernetes:core/v1:Namespace" and r.inputs["metadata"]["name"] == "platform"]
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] == "v1.22"
    assert [f for f in analyzer.analyze(rendering.resources) if f.policy.startswith("pss-")] == []


@pytest.mark.parametrize("key", ["", "-kubeconfig", "kube config"])
def test_regression_an_invalid_kubeconfig_key_name_is_reported_once_with_its_path(key):
    """'' was also looked up as a secret key: 'platform:: missing ... `pulumi config set --secret --stack prod  <value>`'."""
    problems = problems_for(lambda v, s: v["kubernetes"].update(kubeconfigSecretKey=key), stack="prod")
    assert [p.split(": ", 1)[0] for p in problems] == ["platform:kubernetes.kubeconfigSecretKey"], problems


def test_a_misspelt_top_level_key_is_reported_with_the_key_it_resembles():
    def misspell(values, secret_keys):
        values["monitorng"] = values.pop("monitoring", {"slo": {}})
        values["acess"] = [{"group": "team", "role": "view"}]

    problems = problems_for(misspell, "prod")
    [monitoring] = [p for p in problems if p.startswith("platform:monitorng:")]
    assert "unknown key, so the platform would ignore it; did you mean 'platform:monitoring'?" in monitoring
    assert "`pulumi config rm --stack prod monitorng`" in monitoring
    [access] = [p for p in problems if p.startswith("platform:acess:")]
    assert "did you mean 'platform:access'?" in access


def test_an_unknown_key_like_nothing_known_is_still_reported():
    problems = problems_for(lambda values, secret_keys: values.update({"zzz": "1"}))
    assert problems == ["platform:zzz: unknown key, so the platform would ignore it; remove it: "
                        "`pulumi config rm --stack local zzz` (README, 'Stack config', lists the keys)"]


def test_an_encrypted_value_no_setting_uses_is_reported():
    def orphan(values, secret_keys):
        values["old-api-token"] = "[placeholder]"
        secret_keys.add("old-api-token")

    [problem] = problems_for(orphan)
    assert problem.startswith("platform:old-api-token: an encrypted value that no setting uses")
    assert problem.endswith("`pulumi config rm --stack local old-api-token`")


def test_keys_of_other_namespaces_belong_to_providers():
    values, secret_keys = stack_values("local")
    config_keys = {f"{PROJECT}:{key}" for key in values} | {"kubernetes:context", "aws:region"}
    read_value = lambda key: values[key] if isinstance(values.get(key), str) else json.dumps(values[key]) if key in values else None  # noqa: E731
    stack_config.load("local", PROJECT, read_value, lambda key: key in secret_keys, config_keys)


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_the_shipped_stacks_set_no_key_nothing_reads(stack):
    values, secret_keys = stack_values(stack)
    load(values, secret_keys, stack)  # raises ConfigError naming any such key
