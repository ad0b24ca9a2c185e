"""Schema validation of rendered objects (tools/schemas.py): built-in kinds, the platform's CRDs, wire form."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from tools import schemas
from tools.engine import wrap_secret
from tools.engine import normalize_numbers, unwrap_secrets
from tools.schemas import SchemaError, format_path, validate, validate_all

CRD_DIR = Path(schemas.__file__).resolve().parent / "crds"
DELETE = object()  # marks a field to remove in mutated()


def mutated(obj: dict, path: tuple, value) -> dict:
    """A deep copy of obj with the field at path set to value (or removed when value is DELETE)."""
    result = copy.deepcopy(obj)
    parent = result
    for part in path[:-1]:
        parent = parent[part]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


def paths_and_messages(errors: list[SchemaError]) -> list[tuple[str, str]]:
    return [(error.path, error.message) for error in errors]


# ------------------------------------------------------------------------------------------ built-in objects

LABELS = {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "platform"}


def namespace() -> dict:
    labels = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": labels}}


def network_policy() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "shop"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": "dns-tcp"}],
                }
            ],
        },
    }


def resource_quota() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "quota", "namespace": "shop"},
        "spec": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "limits.memory": "16Gi", "pods": "50"}},
    }


def limit_range() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "limits", "namespace": "shop"},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "500m", "memory": "256Mi"},
                    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                }
            ]
        },
    }


def deployment() -> dict:
    container = {
        "name": "web",
        "image": "ghcr.io/example/web:1.4.2",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "envFrom": [{"configMapRef": {"name": "web-config"}}, {"secretRef": {"name": "web-secrets"}}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "failureThreshold": 3},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": LABELS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "serviceAccountName": "web",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": LABELS},
                        }
                    ],
                },
            },
        },
    }


def service() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": LABELS, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def service_account() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "web", "namespace": "shop"},
        "automountServiceAccountToken": False,
    }


def horizontal_pod_autoscaler() -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
            ],
        },
    }


def pod_disruption_budget() -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": LABELS}},
    }


def config_map() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": "shop"},
        "data": {"LOG_LEVEL": "info", "dashboard.json": "{}"},
    }


def secret() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-secrets", "namespace": "shop"},
        "type": "Opaque",
        "stringData": {"API_KEY": "not-a-real-key"},
    }


def ingress() -> dict:
    backend = {"service": {"name": "web", "port": {"name": "http"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {"cert-manager.io/issuer": "letsencrypt"}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "web-tls"}],
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


BUILTIN_OBJECTS = [
    namespace,
    network_policy,
    resource_quota,
    limit_range,
    deployment,
    service,
    service_account,
    horizontal_pod_autoscaler,
    pod_disruption_budget,
    config_map,
    secret,
    ingress,
]


@pytest.mark.parametrize("build", BUILTIN_OBJECTS, ids=lambda build: build.__name__)
def test_valid_builtin_object_passes(build):
    obj = build()
    assert validate(obj) == []
    # The reference implementation agrees that it is valid (it raises on the first error).
    kubernetes_validate.validate(obj, schemas.KUBERNETES_VERSION, strict=True)


def test_wrong_type_is_reported_with_its_path():
    obj = mutated(deployment(), ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "8080")
    assert paths_and_messages(validate(obj)) == [
        ("spec.template.spec.containers[0].ports[0].containerPort", "'8080' is not of type 'integer'")
    ]


def test_unknown_field_is_rejected_in_strict_mode():
    obj = mutated(deployment(), ("spec", "template", "spec", "containers", 0, "imagePullPolicyy"), "Always")
    assert paths_and_messages(validate(obj)) == [
        ("spec.template.spec.containers[0]", "Additional properties are not allowed ('imagePullPolicyy' was unexpected)")
    ]


def test_missing_required_field_is_reported():
    obj = mutated(service(), ("spec", "ports", 0, "port"), DELETE)
    assert paths_and_messages(validate(obj)) == [("spec.ports[0]", "'port' is a required property")]


def test_every_error_of_an_object_is_reported_and_names_the_object():
    obj = mutated(deployment(), ("spec", "replicas"), "two")
    obj = mutated(obj, ("spec", "template", "spec", "containers", 0, "name"), DELETE)
    errors = validate(obj)
    assert {(error.api_version, error.kind, error.name) for error in errors} == {("apps/v1", "Deployment", "web")}
    assert sorted(paths_and_messages(errors)) == [
        ("spec.replicas", "'two' is not of type 'integer', 'null'"),
        ("spec.template.spec.containers[0]", "'name' is a required property"),
    ]


def test_validate_all_collects_the_errors_of_every_object():
    bad_service = mutated(service(), ("spec", "ports", 0, "port"), "eighty")
    bad_map = mutated(config_map(), ("data", "LOG_LEVEL"), 3)
    errors = validate_all([namespace(), bad_service, deployment(), bad_map])
    assert [(error.kind, error.path) for error in errors] == [
        ("Service", "spec.ports[0].port"),
        ("ConfigMap", "data.LOG_LEVEL"),
    ]


# ------------------------------------------------------------------------------------------ agreement with kubernetes-validate

def with_several_errors() -> dict:
    obj = mutated(deployment(), ("spec", "template", "spec", "containers", 0, "name"), DELETE)
    obj = mutated(obj, ("spec", "template", "spec", "containers", 0, "resourcez"), {})
    return mutated(obj, ("spec", "minReadySeconds"), "soon")


INVALID_BUILTIN_OBJECTS = {
    "wrong type": mutated(deployment(), ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "80"),
    "several errors at several depths": with_several_errors(),
    # Both report the metadata error first (the order jsonschema finds them in), not the shallower one in spec.
    "errors in metadata and in spec": mutated(
        mutated(deployment(), ("metadata", "labels", "tier"), 3), ("spec", "replicas"), "two"
    ),
    "int-or-string given a fraction": mutated(service(), ("spec", "ports", 0, "targetPort"), 80.5),
    "int-or-string given a boolean": mutated(pod_disruption_budget(), ("spec", "minAvailable"), True),
    "missing required nested field": mutated(horizontal_pod_autoscaler(), ("spec", "metrics", 0, "type"), DELETE),
    "string instead of list": mutated(network_policy(), ("spec", "policyTypes"), "Ingress"),
    "unknown top-level field": mutated(config_map(), ("spec",), {"LOG_LEVEL": "info"}),
}


@pytest.mark.parametrize("obj", INVALID_BUILTIN_OBJECTS.values(), ids=INVALID_BUILTIN_OBJECTS.keys())
def test_first_error_is_the_one_kubernetes_validate_reports(obj):
    with pytest.raises(kubernetes_validate.ValidationError) as reference:
        kubernetes_validate.validate(obj, schemas.KUBERNETES_VERSION, strict=True)
    first = validate(obj)[0]
    assert (first.path, first.message) == (format_path(reference.value.absolute_path), reference.value.message)


def test_all_errors_are_reported_where_kubernetes_validate_stops_at_one():
    assert sorted(paths_and_messages(validate(with_several_errors()))) == [
        ("spec.minReadySeconds", "'soon' is not of type 'integer', 'null'"),
        ("spec.template.spec.containers[0]", "'name' is a required property"),
        ("spec.template.spec.containers[0]", "Additional properties are not allowed ('resourcez' was unexpected)"),
    ]


def test_kind_removed_from_kubernetes_has_no_schema_in_either():
    obj = mutated(ingress(), ("apiVersion",), "networking.k8s.io/v1beta1")  # removed in Kubernetes 1.22
    assert "no schema is known" in validate(obj)[0].message
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(obj, schemas.KUBERNETES_VERSION, strict=True)


# ------------------------------------------------------------------------------------------ custom resources

CRD_OBJECTS = {
    "AlertmanagerConfig": {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {"name": "shop-alert-routing", "namespace": "shop"},
        "spec": {
            "route": {
                "receiver": "pager",
                "groupBy": ["alertname"],
                "routes": [{"matchers": [{"name": "severity", "matchType": "=", "value": "critical"}], "receiver": "pager"}],
            },
            "receivers": [{"name": "pager", "pagerdutyConfigs": [{"routingKey": {"name": "shop-alerting", "key": "pager"}}]}],
            # Upstream's patterns here put Go's (?i) inside a group: "Saturday" matches case-insensitively.
            "muteTimeIntervals": [{"name": "weekends", "timeIntervals": [{"weekdays": ["Saturday", "sunday"], "months": ["January:december"]}]}],
        },
    },
    "Cluster": {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "shop-db", "namespace": "shop"},
        "spec": {
            "instances": 3,
            "storage": {"size": "10Gi"},
            "bootstrap": {"initdb": {"database": "app", "owner": "app", "secret": {"name": "shop-db-app"}}},
            "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "parameters": {"barmanObjectName": "shop-backups"}}],
        },
    },
    "ScheduledBackup": {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "ScheduledBackup",
        "metadata": {"name": "shop-db-daily", "namespace": "shop"},
        "spec": {"schedule": "0 0 3 * * *", "cluster": {"name": "shop-db"}, "method": "plugin"},
    },
    "Pooler": {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Pooler",
        "metadata": {"name": "shop-db-pooler", "namespace": "shop"},
        "spec": {"cluster": {"name": "shop-db"}, "instances": 2, "type": "rw", "pgbouncer": {"poolMode": "session"}},
    },
    "Backup": {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Backup",
        "metadata": {"name": "shop-db-now", "namespace": "shop"},
        "spec": {"cluster": {"name": "shop-db"}, "method": "plugin"},
    },
    "ObjectStore": {
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": {"name": "shop-backups", "namespace": "shop"},
        "spec": {
            "configuration": {
                "destinationPath": "s3://backups/shop",
                "endpointURL": "https://s3.example.com",
                "s3Credentials": {
                    "accessKeyId": {"name": "backup-creds", "key": "ACCESS_KEY_ID"},
                    "secretAccessKey": {"name": "backup-creds", "key": "ACCESS_SECRET_KEY"},
                },
            },
            "retentionPolicy": "30d",
        },
    },
    "Certificate": {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "secretName": "web-tls",
            "dnsNames": ["shop.example.com"],
            "issuerRef": {"name": "letsencrypt", "kind": "Issuer", "group": "cert-manager.io"},
        },
    },
    "Issuer": {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": "selfsigned", "namespace": "shop"},
        "spec": {"selfSigned": {}},
    },
    "ClusterIssuer": {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "letsencrypt"},
        "spec": {
            "acme": {
                "server": "https://acme-v02.api.letsencrypt.org/directory",
                "email": "ops@example.com",
                "privateKeySecretRef": {"name": "letsencrypt-account"},
                "solvers": [{"http01": {"gatewayHTTPRoute": {"parentRefs": [{"name": "public", "namespace": "gateway"}]}}}],
            }
        },
    },
    "GatewayClass": {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": "public"},
        "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
    },
    "Gateway": {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "public", "namespace": "gateway"},
        "spec": {
            "gatewayClassName": "public",
            "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP"},
                {
                    "name": "https",
                    "port": 443,
                    "protocol": "HTTPS",
                    "hostname": "shop.example.com",
                    "tls": {"mode": "Terminate", "certificateRefs": [{"name": "web-tls", "namespace": "shop"}]},
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                },
            ],
        },
    },
    "HTTPRoute": {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"name": "public", "namespace": "gateway", "sectionName": "https"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": "web", "port": 80}]}
            ],
        },
    },
    "ReferenceGrant": {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "gateway-to-tls", "namespace": "shop"},
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "gateway"}],
            "to": [{"group": "", "kind": "Secret", "name": "web-tls"}],
        },
    },
    "ServiceMonitor": {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"release": "kube-prometheus-stack"}},
        "spec": {
            "selector": {"matchLabels": LABELS},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s", "targetPort": 8080}],
        },
    },
    "PodMonitor": {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "shop-db", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"cnpg.io/cluster": "shop-db"}},
            "podMetricsEndpoints": [{"port": "metrics", "targetPort": "metrics"}],
        },
    },
    "PrometheusRule": {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "web-alerts", "namespace": "shop"},
        "spec": {
            "groups": [
                {
                    "name": "web",
                    "partial_response_strategy": "WARN",  # upstream's pattern is case-insensitive: (?i)
                    "rules": [
                        {
                            "alert": "WebDown",
                            "expr": "up{job='web'} == 0",
                            "for": "5m",
                            "labels": {"severity": "critical"},
                            "annotations": {"summary": "web is down"},
                        }
                    ],
                }
            ]
        },
    },
    "ScaledObject": {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "analytics", "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "analytics"},
            "minReplicaCount": 2,
            "maxReplicaCount": 10,
            "fallback": {"failureThreshold": 3, "replicas": 4},
            "triggers": [
                {
                    "type": "postgresql",
                    "metadata": {"query": "SELECT count(*) FROM jobs", "targetQueryValue": "20"},
                    "authenticationRef": {"name": "analytics"},
                }
            ],
        },
    },
    "TriggerAuthentication": {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": "analytics", "namespace": "shop"},
        "spec": {"secretTargetRef": [{"parameter": "connection", "name": "orders-app", "key": "uri"}]},
    },
    "VerticalPodAutoscaler": {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "updatePolicy": {"updateMode": "Off"},
            "resourcePolicy": {"containerPolicies": [{"containerName": "web", "maxAllowed": {"cpu": "1", "memory": "1Gi"}}]},
        },
    },
}

# kind -> (where to break the valid object, the bad value or DELETE, the error path, a fragment of the message)
CRD_BREAKAGES = {
    "ScaledObject": (("spec", "triggers", 0, "type"), DELETE, "spec.triggers[0]", "'type' is a required property"),
    "TriggerAuthentication": (
        ("spec", "secretTargetRef", 0, "key"), DELETE, "spec.secretTargetRef[0]", "'key' is a required property"
    ),
    "VerticalPodAutoscaler": (("spec", "updatePolicy", "updateMode"), "Sometimes", "spec.updatePolicy.updateMode", "is not one of"),
    "AlertmanagerConfig": (
        ("spec", "muteTimeIntervals", 0, "timeIntervals", 0, "weekdays", 0), "someday",
        "spec.muteTimeIntervals[0].timeIntervals[0].weekdays[0]", "does not match",
    ),
    "Cluster": (("spec", "instances"), "three", "spec.instances", "'three' is not of type 'integer'"),
    "ScheduledBackup": (("spec", "schedule"), DELETE, "spec", "'schedule' is a required property"),
    "Pooler": (("spec", "pgbouncer", "poolMode"), "statement", "spec.pgbouncer.poolMode", "is not one of"),
    "Backup": (("spec", "method"), "tape", "spec.method", "is not one of"),
    "ObjectStore": (("spec", "configuration", "destinationPath"), DELETE, "spec.configuration", "'destinationPath'"),
    "Certificate": (("spec", "dnsNames"), "shop.example.com", "spec.dnsNames", "is not of type 'array'"),
    "Issuer": (
        ("spec", "selfSigned", "crlDistributionPoints"), "http://crl", "spec.selfSigned.crlDistributionPoints", "'array'"
    ),
    "ClusterIssuer": (("spec", "acme", "emial"), "ops@example.com", "spec.acme", "('emial' was unexpected)"),
    "GatewayClass": (("spec", "controllerName"), "no-slash", "spec.controllerName", "does not match"),
    "Gateway": (("spec", "listeners", 0, "port"), 70000, "spec.listeners[0].port", "is greater than the maximum of 65535"),
    "HTTPRoute": (("spec", "rules", 0, "backendRefs", 0, "port"), "80", "spec.rules[0].backendRefs[0].port", "'integer'"),
    "ReferenceGrant": (("spec", "from", 0, "namespace"), DELETE, "spec.from[0]", "'namespace' is a required property"),
    "ServiceMonitor": (("spec", "endpoints", 0, "interval"), "30 seconds", "spec.endpoints[0].interval", "does not match"),
    "PodMonitor": (
        ("spec", "podMetricsEndpoints", 0, "targetPort"), 9187.5, "spec.podMetricsEndpoints[0].targetPort", "9187.5"
    ),
    "PrometheusRule": (
        ("spec", "groups", 0, "partial_response_strategy"), "ignore", "spec.groups[0].partial_response_strategy", "match"
    ),
}


@pytest.mark.parametrize("kind", CRD_OBJECTS)
def test_valid_custom_resource_passes(kind):
    assert validate(CRD_OBJECTS[kind]) == []


@pytest.mark.parametrize("kind", CRD_BREAKAGES)
def test_invalid_custom_resource_fails_with_its_path(kind):
    where, value, path, message_part = CRD_BREAKAGES[kind]
    errors = validate(mutated(CRD_OBJECTS[kind], where, value))
    assert [error.path for error in errors] == [path]
    assert message_part in errors[0].message


def test_every_crd_kind_the_platform_uses_has_a_valid_and_an_invalid_example():
    crd_kinds = {json.loads(crd_file.read_text())["kind"] for crd_file in CRD_DIR.glob("*/*.json")}
    assert crd_kinds == set(CRD_OBJECTS) == set(CRD_BREAKAGES)


def test_every_served_crd_version_is_known_and_its_schema_is_valid_json_schema():
    """check_schema also compiles every pattern: catches Go-only regex syntax Python's re cannot read."""
    served = 0
    for crd_file in sorted(CRD_DIR.glob("*/*.json")):
        crd = json.loads(crd_file.read_text())
        for version, openapi_schema in crd["versions"].items():
            assert schemas.is_known_kind(f"{crd['group']}/{version}", crd["kind"])
            jsonschema.Draft202012Validator.check_schema(schemas.crd_json_schema(openapi_schema))
            served += 1
    assert served == 23  # 19 CRDs; Gateway API's four also serve v1beta1


def test_custom_resource_unknown_field_at_the_top_level_is_rejected():
    obj = mutated(CRD_OBJECTS["Cluster"], ("sepc",), {})
    assert paths_and_messages(validate(obj)) == [("", "Additional properties are not allowed ('sepc' was unexpected)")]


def test_custom_resource_metadata_is_checked_as_object_meta():
    obj = mutated(CRD_OBJECTS["Certificate"], ("metadata", "lables"), {"a": "b"})
    assert paths_and_messages(validate(obj)) == [
        ("metadata", "Additional properties are not allowed ('lables' was unexpected)")
    ]


def test_custom_resource_may_leave_metadata_to_the_provider():
    obj = mutated(CRD_OBJECTS["Cluster"], ("metadata",), DELETE)
    assert validate(obj) == []


def test_free_form_field_of_a_custom_resource_accepts_anything():
    # cert-manager's ACME webhook solver config is x-kubernetes-preserve-unknown-fields: the webhook defines it.
    webhook = {"groupName": "acme.example.com", "solverName": "dns", "config": {"zone": "example.com", "ttl": 60}}
    obj = mutated(CRD_OBJECTS["ClusterIssuer"], ("spec", "acme", "solvers", 0), {"dns01": {"webhook": webhook}})
    assert validate(obj) == []
    typo = mutated(obj, ("spec", "acme", "solvers", 0, "dns01", "webhook", "solvername"), "dns")
    assert [error.path for error in validate(typo)] == ["spec.acme.solvers[0].dns01.webhook"]


# ------------------------------------------------------------------------------------------ OpenAPI flavour

def crd_validator(openapi_schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schemas.crd_json_schema(openapi_schema))


def test_nullable_accepts_null_as_well():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "tier": {"type": "string", "enum": ["gold", "silver"], "nullable": True},
        "plain": {"type": "string"},
    }}}}
    validator = crd_validator(schema)
    assert validator.is_valid({"spec": {"tier": None}})
    assert validator.is_valid({"spec": {"tier": "gold"}})
    assert not validator.is_valid({"spec": {"tier": "bronze"}})
    assert not validator.is_valid({"spec": {"plain": None}})


def test_int_or_string_accepts_an_integer_or_a_string_only():
    schema = {"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": True}}}
    validator = crd_validator(schema)
    assert validator.is_valid({"port": 8080})
    assert validator.is_valid({"port": "http"})
    assert not validator.is_valid({"port": 80.5})
    assert not validator.is_valid({"port": True})
    assert not validator.is_valid({"port": ["http"]})


def test_preserve_unknown_fields_keeps_an_object_open_and_others_are_closed():
    schema = {"type": "object", "properties": {
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}},
        "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
    }}
    validator = crd_validator(schema)
    assert validator.is_valid({"open": {"a": "x", "b": 1}})
    assert not validator.is_valid({"closed": {"a": "x", "b": 1}})


def test_branches_of_any_of_are_not_closed():
    # Value validations in anyOf branches describe the same fields: closing a branch would reject valid objects.
    schema = {"type": "object", "properties": {"spec": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "anyOf": [{"required": ["a"], "properties": {"a": {"type": "string"}}}, {"required": ["b"]}],
    }}}
    validator = crd_validator(schema)
    assert validator.is_valid({"spec": {"a": "x", "b": "y"}})
    assert not validator.is_valid({"spec": {}})


# ------------------------------------------------------------------------------------------ wire form

def test_normalize_numbers_turns_integral_floats_into_ints():
    normalized = normalize_numbers({"replicas": 2.0, "ratio": 0.5, "ports": [8080.0], "on": True, "name": "x"})
    assert normalized == {"replicas": 2, "ratio": 0.5, "ports": [8080], "on": True, "name": "x"}
    assert type(normalized["replicas"]) is int and type(normalized["ports"][0]) is int
    assert type(normalized["ratio"]) is float


def test_wire_form_object_without_a_name_validates():
    wire = mutated(deployment(), ("metadata", "name"), DELETE)
    wire = mutated(wire, ("spec", "replicas"), 2.0)
    wire = mutated(wire, ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), 8080.0)
    wire = mutated(wire, ("spec", "template", "spec", "securityContext", "runAsUser"), 10001.0)
    assert validate(wire) == []
    broken = mutated(wire, ("spec", "replicas"), 2.5)
    assert [(error.name, error.path) for error in validate(broken)] == [("", "spec.replicas")]


def test_unwrap_secrets_replaces_every_wrapper_by_its_value():
    wire = {"data": {"password": wrap_secret("s3cret")}, "list": [wrap_secret(wrap_secret(1.0))], "plain": 1}
    assert unwrap_secrets(wire) == {"data": {"password": "s3cret"}, "list": [1.0], "plain": 1}


def test_secret_wrapped_values_are_validated_as_their_value():
    wrapped = mutated(secret(), ("stringData",), wrap_secret({"API_KEY": "k", "PORT": 5432.0}))
    errors = validate(wrapped)
    # Unwrapped and normalized: the map is checked (not rejected as a wrapper object) and 5432 is an int.
    assert paths_and_messages(errors) == [("stringData.PORT", "5432 is not of type 'string', 'null'")]
    fixed = mutated(secret(), ("stringData",), wrap_secret({"API_KEY": wrap_secret("k")}))
    assert validate(fixed) == []


def test_values_unknown_during_preview_are_not_judged():
    from pulumi.output import Unknown

    preview = mutated(deployment(), ("spec", "replicas"), Unknown())
    preview = mutated(preview, ("spec", "revisionHistoryLimit"), schemas.UNKNOWN_SENTINEL)  # an integer field
    assert validate(preview) == []
    # Known values next to them still are.
    broken = mutated(preview, ("spec", "minReadySeconds"), "soon")
    assert [error.path for error in validate(broken)] == ["spec.minReadySeconds"]


# ------------------------------------------------------------------------------------------ unknown kinds

@pytest.mark.parametrize(
    "api_version, kind",
    [
        ("app/v1", "Deployment"),  # typo in the group
        ("apps/v1", "Deployement"),  # typo in the kind
        ("apps/v1", "deployment"),  # wrong case
        ("apps.example.com/v1", "Deployment"),  # file names drop the domain: must not find apps/v1's schema
        ("v1", "Affinity"),  # a sub-object's schema, not a kind
        ("postgresql.cnpg.io/v2", "Cluster"),  # a version the CRD does not serve
        ("v1/../../x", "Namespace"),
    ],
)
def test_unknown_api_version_or_kind_fails_loudly(api_version, kind):
    assert not schemas.is_known_kind(api_version, kind)
    errors = validate({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
    assert [(error.api_version, error.kind, error.path) for error in errors] == [(api_version, kind, "")]
    assert "no schema is known" in errors[0].message


def test_known_kinds():
    assert schemas.is_known_kind("apps/v1", "Deployment")
    assert schemas.is_known_kind("v1", "Namespace")
    assert schemas.is_known_kind("autoscaling/v2", "HorizontalPodAutoscaler")
    assert schemas.is_known_kind("postgresql.cnpg.io/v1", "Cluster")
    assert schemas.is_known_kind("gateway.networking.k8s.io/v1beta1", "HTTPRoute")


def test_missing_api_version_and_kind_are_reported():
    errors = validate({"metadata": {"name": "x"}})
    assert [error.path for error in errors] == ["apiVersion", "kind"]
    assert validate(["not", "an", "object"])[0].message.startswith("not a Kubernetes object")


def test_format_path():
    assert format_path(["spec", "containers", 0, "ports", 1, "containerPort"]) == "spec.containers[0].ports[1].containerPort"
    assert format_path(["metadata", "labels", "app.kubernetes.io/name"]) == 'metadata.labels["app.kubernetes.io/name"]'
    assert format_path([]) == ""


# ------------------------------------------------------------------------------------------ cost (printed, not asserted)
