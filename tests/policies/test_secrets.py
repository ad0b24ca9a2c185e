"""The secrets rules, driven the way the CLI drives them: through the policy SDK's analyzer (tools.analyzer).

The pure cores are called directly only where the analyzer cannot show a case: secret-wrapped values, which
the policy SDK unwraps before any policy sees them.
"""

from __future__ import annotations

import base64

import pytest
from pulumi.runtime import proto

from policies import secrets
from tools.analyzer import analyze, analyze_manifests, build_servicer
from tools.engine import RecordedResource, wrap_secret

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
RANDOM_TOKEN = "q8Vf2LrX0bTz9WkN4sHd7JmC"  # 24 characters, mixed case and digits
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"


def findings(objects, policy):
    return [f for f in analyze_manifests(objects, policies=secrets.POLICIES) if f.policy == policy]


def deployment(env, list_name="containers"):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "apps"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {list_name: [{"name": "api", "image": "ghcr.io/acme/api:1.0.0", "env": env}]},
            },
        },
    }


def env_findings(name, value):
    return findings([deployment([{"name": name, "value": value}])], "no-secret-literal-in-env")


# --- no-secret-literal-in-env -------------------------------------------------------------------------------

NOT_SECRETS = [
    ("TOKEN_TTL_SECONDS", "3600"),
    ("DB_PASSWORD_FILE", "/run/secrets/x"),
    ("PASSWORD_MIN_LENGTH", "12"),
    ("SECRET_NAME", "app-creds"),
    ("DB_PASSWORD", ""),
    ("FEATURE_ENABLED", "true"),
    ("API_TOKEN_REQUIRED", "false"),
    ("REPLICAS", "3"),
    ("CONFIG_PATH", "/etc/app/config.yaml"),
    ("DB_HOST", "db-rw.apps.svc.cluster.local"),
    ("OAUTH_TOKEN_URL", "https://auth.example.com/oauth/token"),
    ("DATABASE_URL", "postgres://app:$(DB_PASSWORD)@db-rw:5432/app"),
    ("GIT_SHA", "3f2a9c1e4b5d6a7f8e9d0c1b2a3f4e5d6c7b8a9f"),
    ("REQUEST_ID_NAMESPACE", "123e4567-e89b-12d3-a456-426614174000"),
    ("SERVICE_CLASS", "MyApplicationServiceName2024"),
    ("JAVA_OPTS", "-Xmx512m -XX:+UseG1GC"),
    ("PWD", "/app"),
    ("SESSION_TIMEOUT", "30m"),
]


@pytest.mark.parametrize(("name", "value"), NOT_SECRETS)
def test_settings_that_are_not_secrets_pass(name, value):
    assert env_findings(name, value) == []


SECRETS = [
    ("DB_PASSWORD", "hunter2", "secret-sounding name"),
    ("apiKey", "abc123", "secret-sounding name"),
    ("STRIPE_SECRET_KEY", "not-random-but-literal", "secret-sounding name"),
    ("DATABASE_URL", "postgres://app:s3cret@db-rw:5432/app", "user:password"),
    ("AWS_ACCESS_KEY_ID", AWS_KEY_ID, "AWS access key id"),
    ("SESSION", JWT, "JSON Web Token"),
    ("GH", "ghp_" + "a1B2" * 9, "GitHub token"),
    ("SLACK", "xoxb-1234567890-abcdefghij", "Slack token"),
    ("TLS_KEY_PEM", PEM, "PEM private key"),
    ("UPSTREAM", RANDOM_TOKEN, "high-entropy token"),
]


@pytest.mark.parametrize(("name", "value", "reason"), SECRETS)
def test_secrets_in_env_values_are_reported(name, value, reason):
    [finding] = env_findings(name, value)
    assert reason in finding.message
    assert finding.enforcement == "mandatory"


def test_env_message_names_the_field_and_the_fix_but_not_the_value():
    [finding] = findings(
        [deployment([{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "value": "hunter2"}])],
        "no-secret-literal-in-env",
    )
    assert "spec.template.spec.containers[0](api).env[1](DB_PASSWORD).value" in finding.message
    assert "valueFrom.secretKeyRef" in finding.message
    assert "hunter2" not in finding.message


def test_env_from_a_secret_key_ref_passes():
    env = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-app", "key": "password"}}}]
    assert findings([deployment(env)], "no-secret-literal-in-env") == []


POD_SPECS = {
    "Pod": ("v1", lambda pod: {"spec": pod}, "spec"),
    "Deployment": ("apps/v1", lambda pod: {"spec": {"template": {"spec": pod}}}, "spec.template.spec"),
    "StatefulSet": ("apps/v1", lambda pod: {"spec": {"template": {"spec": pod}}}, "spec.template.spec"),
    "DaemonSet": ("apps/v1", lambda pod: {"spec": {"template": {"spec": pod}}}, "spec.template.spec"),
    "ReplicaSet": ("apps/v1", lambda pod: {"spec": {"template": {"spec": pod}}}, "spec.template.spec"),
    "ReplicationController": ("v1", lambda pod: {"spec": {"template": {"spec": pod}}}, "spec.template.spec"),
    "Job": ("batch/v1", lambda pod: {"spec": {"template": {"spec": pod}}}, "spec.template.spec"),
    "CronJob": (
        "batch/v1",
        lambda pod: {"spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}},
        "spec.jobTemplate.spec.template.spec",
    ),
}


@pytest.mark.parametrize("kind", sorted(POD_SPECS))
@pytest.mark.parametrize("list_name", ["containers", "initContainers", "ephemeralContainers"])
def test_every_container_of_every_pod_bearing_kind_is_checked(kind, list_name):
    api_version, wrap, base = POD_SPECS[kind]
    pod = {list_name: [{"name": "c", "image": "busybox:1.36", "env": [{"name": "TOKEN", "value": "literal"}]}]}
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w"}, **wrap(pod)}
    [finding] = findings([obj], "no-secret-literal-in-env")
    assert finding.message.startswith(f"{base}.{list_name}[0](c).env[0](TOKEN).value ")


def test_a_pulumi_secret_in_an_env_value_is_reported_by_the_pure_rule():
    # The policy SDK unwraps secrets before policies run, so only the pure core can see the wrapping.
    [message] = secrets.env_findings(deployment([{"name": "GREETING", "value": wrap_secret("hello")}]))
    assert "Pulumi secret" in message and "secretKeyRef" in message


def test_a_pulumi_secret_in_an_env_value_is_reported_through_the_analyzer_by_its_name():
    resource = RecordedResource(
        urn="urn:pulumi:test::platform::kubernetes:apps/v1:Deployment::api",
        type="kubernetes:apps/v1:Deployment",
        name="api",
        inputs=deployment([{"name": "DB_PASSWORD", "value": wrap_secret("offline-placeholder-1234")}]),
    )
    [finding] = [f for f in analyze([resource], policies=secrets.POLICIES) if f.policy == "no-secret-literal-in-env"]
    assert "DB_PASSWORD" in finding.message


def test_an_unknown_value_does_not_hide_the_other_findings():
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # what the engine sends for a value not known in preview
    env = [{"name": "DB_HOST", "value": unknown}, {"name": "DB_PASSWORD", "value": "hunter2"}]
    result = analyze_manifests([deployment(env)], policies=secrets.POLICIES)
    assert [f.policy for f in result] == ["no-secret-literal-in-env"]
    assert "DB_PASSWORD" in result[0].message and "can't run policy" not in result[0].message


# --- no-secret-in-configmap ---------------------------------------------------------------------------------


def configmap(data=None, binary_data=None):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-config", "namespace": "apps"}}
    if data is not None:
        obj["data"] = data
    if binary_data is not None:
        obj["binaryData"] = binary_data
    return obj


def configmap_messages(**fields):
    return [f.message for f in findings([configmap(**fields)], "no-secret-in-configmap")]


def test_configmap_settings_pass():
    data = {
        "TOKEN_TTL_SECONDS": "3600",
        "SECRET_NAME": "app-creds",
        "db.password": "",
        "LOG_LEVEL": "debug",
        "app.properties": "server.port=8080\nspring.datasource.password=${DB_PASSWORD}\nsecretName: app-tls\n",
        "dashboard.json": '{\n  "title": "API latency",\n  "uid": "api-latency",\n  "panels": []\n}\n',
    }
    binary = {"logo.png": base64.b64encode(bytes(range(256))).decode()}
    assert configmap_messages(data=data, binary_data=binary) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"DB_PASSWORD": "hunter2"}, "data.DB_PASSWORD holds a literal value under a secret-sounding name"),
        ({"app.properties": "server.port=8080\nspring.datasource.password=hunter2\n"}, "data.app.properties has a line 'spring.datasource.password'"),
        ({"settings.yaml": "database:\n  url: postgres://app:s3cret@db/app\n"}, "data.settings.yaml looks like a URL with an embedded user:password"),
        ({"session": JWT}, "data.session looks like a JSON Web Token"),
    ],
)
def test_secrets_in_configmap_data_are_reported(data, expected):
    [message] = configmap_messages(data=data)
    assert message.startswith(expected)
    assert "move it to a Kubernetes Secret" in message


def test_a_file_named_like_a_secret_is_judged_by_what_it_holds():
    """A Grafana dashboard of a service called platform-secrets is `platform-secrets.json`: found by the config fuzzer."""
    dashboard = '{\n "title": "platform-secrets",\n "panels": []\n}'
    assert configmap_messages(data={"platform-secrets.json": dashboard, "api-token.yaml": "a: 1\nb: two\n"}) == []
    [one_line] = configmap_messages(data={"db-password.txt": "hunter2"})
    assert "secret-sounding name" in one_line
    [inside] = configmap_messages(data={"secrets.yaml": "user: app\npassword: hunter2\n"})
    assert "has a line 'password'" in inside
    [shaped] = configmap_messages(data={"api-token.json": '{\n "token": "$(T)",\n "jwt": "%s"\n}' % JWT})
    assert "JSON Web Token" in shaped


def test_secrets_in_configmap_binary_data_are_reported():
    [message] = configmap_messages(binary_data={"tls.key": base64.b64encode(PEM.encode()).decode()})
    assert message.startswith("binaryData.tls.key looks like a PEM private key")


def test_a_pulumi_secret_in_a_configmap_is_reported_by_the_pure_rule():
    [message] = secrets.configmap_findings(configmap(data={"greeting": wrap_secret("hello")}))
    assert message.startswith("data.greeting is a Pulumi secret stored in a ConfigMap")


# --- no-secret-in-metadata ----------------------------------------------------------------------------------


def test_credential_shaped_annotations_and_labels_are_reported():
    obj = deployment([])
    obj["metadata"]["annotations"] = {"example.com/deploy-key": AWS_KEY_ID}
    obj["spec"]["template"]["metadata"]["labels"]["build"] = RANDOM_TOKEN
    messages = sorted(f.message for f in findings([obj], "no-secret-in-metadata"))
    assert len(messages) == 2
    assert messages[0].startswith("metadata.annotations['example.com/deploy-key'] looks like an AWS access key id")
    assert messages[1].startswith("spec.template.metadata.labels['build'] looks like a high-entropy token")
    assert all("keep it in a Kubernetes Secret" in m for m in messages)


def test_ordinary_metadata_passes():
    obj = configmap(data={})
    obj["metadata"]["labels"] = {"app.kubernetes.io/name": "api", "app.kubernetes.io/version": "1.4.2"}
    obj["metadata"]["annotations"] = {
        # kubectl writes the whole object here, Secret data included: not the author's doing.
        "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"' + JWT + '"}}',
        "vault.hashicorp.com/agent-inject-secret-db": "database/creds/app",
        "checksum/config": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "cert-manager.io/cluster-issuer": "letsencrypt-prod",
    }
    assert findings([obj], "no-secret-in-metadata") == []


# --- no-plaintext-secret-manifest ---------------------------------------------------------------------------


def secret_manifest(**fields):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-app", "namespace": "apps"}, **fields}


def test_a_yaml_secret_with_literal_data_is_reported():
    obj = secret_manifest(data={"password": "aHVudGVyMg==", "username": "YXBw"}, stringData={"token": "t"})
    messages = sorted(f.message for f in findings([obj], "no-plaintext-secret-manifest"))
    assert messages[0].startswith("data (password, username) is written in plaintext")
    assert messages[1].startswith("stringData (token) is written in plaintext")
    assert all("pulumi config set --secret" in m and "External Secrets Operator" in m for m in messages)


@pytest.mark.parametrize(
    "obj",
    [
        secret_manifest(type="kubernetes.io/service-account-token", metadata={"name": "t", "annotations": {"kubernetes.io/service-account.name": "api"}}),
        secret_manifest(data={}),
        secret_manifest(),
    ],
)
def test_secrets_without_literal_data_pass(obj):
    assert findings([obj], "no-plaintext-secret-manifest") == []


def test_a_program_secret_passes_because_its_data_is_an_additional_secret_output():
    # What the CLI sends for kubernetes.core.v1.Secret: the SDK registers data/stringData as additional secret
    # outputs and the values wrapped; the policy SDK unwraps the values, the option is what remains visible.
    obj = secret_manifest(stringData=wrap_secret({"password": "from-encrypted-config"}))
    servicer = build_servicer(secrets.POLICIES)
    properties = proto.AnalyzeRequest().properties
    properties.update(obj)
    request = proto.AnalyzeRequest(
        type="kubernetes:core/v1:Secret",
        urn="urn:pulumi:test::platform::kubernetes:core/v1:Secret::db-app",
        name="db-app",
        properties=properties,
        options=proto.AnalyzerResourceOptions(additionalSecretOutputs=["data", "stringData"]),
    )
    assert list(servicer.Analyze(request, None).diagnostics) == []
    request.options.ClearField("additionalSecretOutputs")
    [diagnostic] = servicer.Analyze(request, None).diagnostics
    assert diagnostic.policyName == "no-plaintext-secret-manifest"


def test_wrapped_secret_data_passes_in_the_pure_rule():
    assert secrets.plaintext_secret_findings(secret_manifest(data=wrap_secret({"password": "eA=="}))) == []
    assert secrets.plaintext_secret_findings(secret_manifest(data={"password": wrap_secret("eA==")})) == []


# --- the judging helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DB_PASSWORD", True),
        ("dbPassword", True),
        ("db.password", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("CLIENT_SECRET", True),
        ("PGPASSWORD", True),
        ("DB_PASSWORD_FILE", False),
        ("TOKEN_TTL_SECONDS", False),
        ("SECRET_NAME", False),
        ("PASSWORD_MIN_LENGTH", False),
        ("PWD", False),
        ("KEYCLOAK_REALM", False),
    ],
)
def test_secret_names(name, expected):
    assert secrets.is_secret_name(name) is expected


def test_random_tokens_are_told_from_identifiers():
    assert secrets.looks_random(RANDOM_TOKEN)
    assert secrets.looks_random("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    for identifier in ("MyApplicationServiceName2024", "kube-prometheus-stack-grafana1A", "X509CertificateAuthority2048Bits"):
        assert not secrets.looks_random(identifier), identifier
    assert not secrets.looks_random("q8Vf2LrX0bTz9Wk")  # random, but shorter than MIN_TOKEN_LENGTH
