"""The Kubernetes objects each entry of services[], databases[] and caches[] brings into the namespace, by kind and
name: what the components create and what the operators create from them (CloudNativePG's Services and Secrets).

Names are derived from the entries' names (`<db>-database`, `ingress-to-<svc>`), so two entries can derive one
object: a service `orders-database` beside a database `orders` makes the database's NetworkPolicy a second time,
and a service `orders-rw` makes the Service CloudNativePG makes for the database's primary. `pulumi up` would fail
halfway with 'already exists' (or two owners would fight over one object), so stack_config refuses such neighbours
from this table at config time. tests/test_object_names.py keeps the table complete against the shipped stacks.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Iterable

HASH = "????????"  # the 8 hex digits a one-off Job's name ends with (components.app_service.one_off_job_name)

# (kind, name template): "{name}" is the entry's name; "?" one character the component computes.
SERVICE_OBJECTS = (
    ("Deployment", "{name}"), ("CronJob", "{name}"), ("Service", "{name}"), ("ServiceAccount", "{name}"),
    ("ConfigMap", "{name}-config"), ("ConfigMap", "dashboard-{name}"), ("Secret", "{name}-secrets"),
    ("NetworkPolicy", "{name}"), ("NetworkPolicy", "ingress-to-{name}"), ("NetworkPolicy", "metrics-{name}"),
    ("PodDisruptionBudget", "{name}"), ("HorizontalPodAutoscaler", "{name}"), ("VerticalPodAutoscaler", "{name}"),
    ("ScaledObject", "{name}"), ("TriggerAuthentication", "{name}-trigger-?"), ("ServiceMonitor", "{name}"),
    ("PodMonitor", "{name}"),
)  # fmt: skip
DATABASE_OBJECTS = (
    ("Cluster", "{name}"), ("Secret", "{name}-app"), ("Secret", "{name}-backup-credentials"),
    ("NetworkPolicy", "{name}-database"), ("NetworkPolicy", "{name}-clients"), ("NetworkPolicy", "{name}-direct-clients"),
    ("ObjectStore", "{name}-backups"), ("ObjectStore", "{name}-restore-source"), ("ScheduledBackup", "{name}-scheduled"),
    ("PodMonitor", "{name}"),
    # CloudNativePG's own, from the Cluster (pkg/specs): Services, Secrets, PDBs, its ServiceAccount and Role.
    ("Service", "{name}-rw"), ("Service", "{name}-ro"), ("Service", "{name}-r"), ("Secret", "{name}-ca"),
    ("Secret", "{name}-server"), ("Secret", "{name}-replication"), ("Secret", "{name}-superuser"),
    ("PodDisruptionBudget", "{name}"), ("PodDisruptionBudget", "{name}-primary"), ("ServiceAccount", "{name}"),
)  # fmt: skip
POOLER_OBJECTS = (  # a database with a pooler: ours, and the Deployment/Service CloudNativePG makes for the Pooler
    ("Pooler", "{name}-pooler-rw"), ("NetworkPolicy", "{name}-pooler-rw"), ("PodDisruptionBudget", "{name}-pooler-rw"),
    ("PodMonitor", "{name}-pooler-rw"), ("Deployment", "{name}-pooler-rw"), ("Service", "{name}-pooler-rw"),
    ("ServiceAccount", "{name}-pooler-rw"),
)  # fmt: skip
CACHE_OBJECTS = (
    ("StatefulSet", "{name}"), ("StatefulSet", "{name}-sentinel"), ("Service", "{name}"), ("Service", "{name}-headless"),
    ("Service", "{name}-sentinel"), ("Service", "{name}-sentinel-headless"), ("PodDisruptionBudget", "{name}"),
    ("PodDisruptionBudget", "{name}-sentinel"), ("NetworkPolicy", "{name}-clients"), ("NetworkPolicy", "{name}-data"),
    ("NetworkPolicy", "{name}-sentinels"), ("ConfigMap", "{name}-config"), ("ConfigMap", "dashboard-cache-{name}"),
    ("Secret", "{name}-auth"), ("PodMonitor", "{name}"),
)  # fmt: skip
# Made once per namespace, whatever the entries are called.
NAMESPACE_OBJECTS = (("NetworkPolicy", "default-deny"), ("NetworkPolicy", "ingress-to-acme-solver"), ("Secret", "platform-alert-receivers"))


Owner = tuple  # ("services", 2): the entry at that key path; (): the namespace itself


def claims(values: dict[str, Any]) -> list[tuple[str, str, Owner]]:
    """(kind, name pattern, owner) of every object the raw config's entries make."""
    result: list[tuple[str, str, Owner]] = [(kind, name, ()) for kind, name in NAMESPACE_OBJECTS]
    for key, templates in (("services", SERVICE_OBJECTS), ("databases", DATABASE_OBJECTS), ("caches", CACHE_OBJECTS)):
        entries = values.get(key)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name:
                continue  # reported by the model
            if isinstance(entry.get("external"), dict):
                continue  # an external cache makes nothing here
            owner = (key, index)
            made = list(templates) + (list(POOLER_OBJECTS) if key == "databases" and entry.get("pooler") else [])
            if key == "services":
                made += [("Job", f"{{name}}-{purpose}-{HASH}") for purpose in _one_off_purposes(entry)]
            result += [(kind, template.format(name=name), owner) for kind, template in made]
    return result


def _one_off_purposes(service: dict[str, Any]) -> list[str]:
    tasks = service.get("tasks")
    names = [task.get("name") for task in tasks if isinstance(task, dict)] if isinstance(tasks, list) else []
    return (["migrations"] if service.get("migrations") else []) + [name for name in names if isinstance(name, str)]


def collisions(made: Iterable[tuple[str, str, Owner]]) -> list[tuple[Owner, str, str, Owner]]:
    """(owner, kind, name, other owner) for each object two owners would make, the later owner first."""
    seen: list[tuple[str, str, Owner]] = []
    found = []
    for kind, name, owner in made:
        for other_kind, other_name, other_owner in seen:
            if other_kind == kind and other_owner != owner and _same_object(name, other_name):
                found.append((owner, kind, name, other_owner))
                break
        seen.append((kind, name, owner))
    return found


def _same_object(a: str, b: str) -> bool:
    return a == b or fnmatchcase(a, b) or fnmatchcase(b, a)
