"""Hypothesis strategies for stack config: valid configs built from the shipped stacks, and mutations of them.

A generated case is what `stack_config.load` reads: the stack, each top-level key's value (`values`, parsed; a
string is handed over as is, anything else as JSON, as the language host does), the secret config keys, and raw
texts that replace a key's value outright (broken JSON and the like).

Valid configs start from a shipped stack file (its environment, cluster target, registry, defaults, cnpg,
backups, add-ons and secret keys) and vary what a user varies: the namespace, the quota, 1-4 services (names,
kinds (web, worker probed by a command or on a health port, cron with a schedule built field by field or a macro,
a time zone, concurrency, deadlines, retries, history), command/args, one-off tasks, images, ports, replicas or
autoscaling (HPA targets and behavior, or KEDA with its triggers, fallback and scale to zero), a VPA, resources,
env, secretEnv, health paths, calls (to web services), metrics, user ids),
0-2 databases (names, instances, storage, resources, parameters, users, env prefixes, backups, pinned images, poolers, a restore of one from the other), 1-3 public hosts
and their routes (gateway or ingress mode, a shared Gateway, HSTS, timeouts, annotations), team access grants, a render directory instead of a cluster, the
API server CIDRs and ports, backup retention/compression/encryption, the Pod Security version, and monitoring
(labels, SLOs, metric names, thresholds), where KEDA runs; the quota and the LimitRange are raised to what the
workloads need at their maxima. Names come partly from collision-prone pieces (`orders` + `-clients`,
`-app`, ...) because the objects of services and databases are named after them. Prod images are pinned by
digest, as prod requires.

Mutations break a valid config the ways people do: a wrong type anywhere, a missing or unknown key, numbers out
of range, bad names, a top-level value that is not JSON, duplicates, empty collections, secrets in plaintext.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import string
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

import stack_config
from components import object_names
from components.cache_config import CACHE_ENV_SUFFIXES, DEFAULT_EXPORTER_IMAGE, DEFAULT_VALKEY_IMAGE, MAXMEMORY_POLICIES
from components import capacity_config
from components.autoscaling_config import quantity
from tools import engine

PROJECT = "platform"
STACKS = ("local", "staging", "prod")
MIN_REPLICAS = {"local": 1, "staging": 2, "prod": 3}
PLACEHOLDER = engine.PLACEHOLDER_PREFIX


@dataclass
class Case:
    stack: str
    values: dict[str, Any]  # top-level key (no `platform:`) -> parsed value
    secret_keys: set[str]
    raw: dict[str, str] = field(default_factory=dict)  # top-level key -> the exact text read (overrides values)
    mutations: list[str] = field(default_factory=list)  # what was done to a valid config, for failure reports

    def read_value(self, key: str) -> str | None:
        if key in self.raw:
            return self.raw[key]
        if key not in self.values:
            return None
        value = self.values[key]
        return value if isinstance(value, str) else json.dumps(value)

    def load(self) -> stack_config.StackConfig:
        keys = {f"{PROJECT}:{key}" for key in set(self.values) | set(self.raw)}  # as the program passes them
        return stack_config.load(self.stack, PROJECT, self.read_value, lambda key: key in self.secret_keys, keys)

    def engine_config(self) -> tuple[dict[str, str], list[str]]:
        """The same config as engine.render takes it (fully qualified keys, strings, secret keys)."""
        keys = set(self.values) | set(self.raw)
        config = {f"{PROJECT}:{key}": self.read_value(key) for key in keys}
        return config, sorted(f"{PROJECT}:{key}" for key in self.secret_keys if key in keys)

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example: enough to reproduce it
        return (
            f"Case(stack={self.stack!r}, mutations={self.mutations!r},\n"
            f"     values={json.dumps(self.values, indent=1, sort_keys=True)},\n"
            f"     secret_keys={sorted(self.secret_keys)!r}, raw={self.raw!r})"
        )


@functools.lru_cache(maxsize=None)
def _shipped(stack: str) -> tuple[dict[str, Any], frozenset[str]]:
    config, secret_keys = engine.stack_config(stack)
    values = {}
    for full_key, raw in config.items():
        key = full_key.split(":", 1)[1]
        values[key] = json.loads(raw) if raw[:1] in "{[" else raw
    return values, frozenset(key.split(":", 1)[1] for key in secret_keys)


def shipped(stack: str) -> tuple[dict[str, Any], set[str]]:
    values, secret_keys = _shipped(stack)
    return copy.deepcopy(values), set(secret_keys)


# --- small pieces ---------------------------------------------------------------------------------------------

LOWER = string.ascii_lowercase
ALNUM = string.ascii_lowercase + string.digits


def dns_label(min_middle: int = 0, max_middle: int = 10, first=ALNUM) -> st.SearchStrategy[str]:
    """A DNS label (stack_config.DNS_LABEL): a, web, api-2, 2fa, ..."""
    middle = st.text(alphabet=ALNUM + "-", min_size=min_middle, max_size=max_middle)
    return st.builds(
        lambda first, mid, last: first + (mid + last if mid or last else ""),
        st.sampled_from(first),
        middle,
        st.sampled_from(["", *ALNUM]),
    ).filter(lambda label: not label.endswith("-"))


# Names of services and databases: objects are named after them (`<db>-app`, `<db>-clients`, `<svc>-config`, ...),
# so pieces that recreate one another's object names find collisions sooner than random labels would.
NAME_BASES = ["web", "api", "orders", "pay", "worker", "platform", "monitoring", "cluster"]
NAME_SUFFIXES = ["", "", "", "-app", "-clients", "-database", "-rw", "-config", "-secrets", "-backups", "-scheduled", "-metrics", "-2"]
database_name = st.one_of(
    st.builds(str.__add__, st.sampled_from(NAME_BASES), st.sampled_from(NAME_SUFFIXES)),
    dns_label(0, 12),
    st.just("x" * 40),  # the longest name allowed
)
# Services name a Kubernetes Service: a DNS-1035 label, starting with a letter.
service_name = st.one_of(
    st.builds(str.__add__, st.sampled_from(NAME_BASES), st.sampled_from(NAME_SUFFIXES)),
    dns_label(0, 12, first=LOWER),
    st.just("x" * 40),
)


def cpu() -> st.SearchStrategy[tuple[int, str]]:
    """(millicores, quantity text)."""
    return st.one_of(
        st.integers(10, 4000).map(lambda m: (m, f"{m}m")),
        st.integers(1, 8).map(lambda c: (c * 1000, str(c))),
        st.sampled_from([(500, "0.5"), (1500, "1.5"), (250, "0.25")]),
    )


def memory() -> st.SearchStrategy[tuple[int, str]]:
    """(MiB, quantity text)."""
    return st.one_of(
        st.integers(16, 4096).map(lambda mi: (mi, f"{mi}Mi")),
        st.integers(1, 16).map(lambda gi: (gi * 1024, f"{gi}Gi")),
        st.integers(64, 2048).map(lambda m: (m * 1000 * 1000 // 2**20, f"{m}M")),
    )


@st.composite
def resources(draw) -> dict[str, Any]:
    """Requests within limits (a scale-up factor of 1-4), as Kubernetes requires."""
    (req_m, req_cpu), (req_mi, req_mem) = draw(cpu()), draw(memory())
    factor_cpu, factor_mem = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return {
        "requests": {"cpu": req_cpu, "memory": req_mem},
        "limits": {"cpu": f"{req_m * factor_cpu}m", "memory": f"{req_mi * factor_mem + 1}Mi"},
    }


ENV_NAME_WORDS = ["LOG", "LEVEL", "API", "URL", "FEATURE", "FLAG", "TIMEOUT", "CACHE", "SIZE", "REGION", "MODE", "TTL",
                  "FILE", "NAME", "MIN", "LENGTH", "PORT", "HOST", "USER", "PATH", "WORKERS", "ENABLED"]  # fmt: skip
SECRET_WORDS = ("PASS", "SECRET", "TOKEN", "KEY", "CRED", "DSN", "BEARER", "PRIVATE", "AUTH")
env_name = st.one_of(
    st.lists(st.sampled_from(ENV_NAME_WORDS), min_size=1, max_size=3).map("_".join),
    st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z"),
)
plain_env_name = env_name.filter(lambda name: not any(word in name.upper() for word in SECRET_WORDS))

# Values the detectors must let through under a plain name: numbers, words, paths, hosts, plain URLs, references.
safe_env_value = st.one_of(
    st.sampled_from(["debug", "info", "warn", "true", "false", "", "3600", "30s", "1h", "12", "eu-west-1", "/run/secrets/db",
                     "/etc/app/config.yaml", "http://api:8081", "https://auth.example.com/oauth/token", "$(DB_PASSWORD)",
                     "postgres://app:$(DB_PASSWORD)@db-rw:5432/app", "db-rw.platform.svc.cluster.local", "-Xmx512m -XX:+UseG1GC",
                     "MyApplicationServiceName2024", "3f2a9c1e4b5d6a7f8e9d0c1b2a3f4e5d6c7b8a9f", "hello world"]),  # fmt: skip
    st.integers(-(10**6), 10**9).map(str),
    st.from_regex(r"\A[a-z][a-z-]{0,12}\Z"),
)
# The pack's false-positive guards: secret-sounding names that hold settings about secrets, or references.
GUARDED_ENV = [("TOKEN_TTL_SECONDS", "3600"), ("TOKEN_TTL", "1h"), ("DB_PASSWORD_FILE", "/run/secrets/db-password"),
               ("PASSWORD_MIN_LENGTH", "12"), ("SECRET_NAME", "app-creds"), ("API_TOKEN_REQUIRED", "false"),
               ("DB_PASSWORD", "$(DB_PASSWORD_FROM_SECRET)"), ("DATABASE_URL", "postgres://app:${DB_PASSWORD}@db-rw:5432/app"),
               ("OAUTH_TOKEN_URL", "https://auth.example.com/oauth/token"), ("SESSION_TIMEOUT", "30m")]  # fmt: skip
safe_env = st.builds(
    lambda plain, guarded: {**plain, **dict(guarded)},
    st.dictionaries(plain_env_name, safe_env_value, max_size=3),
    st.lists(st.sampled_from(GUARDED_ENV), max_size=2),
)

# Anything a user might type, secret-looking or not: for the render property, where `load` decides.
SECRET_LOOKING = ["hunter2", "postgres://app:s3cret@db:5432/app", "AKIAIOSFODNN7EXAMPLE", "q8Vf2LrX0bTz9WkN4sHd7JmC",
                  "ghp_" + "a1B2" * 9, "xoxb-1234567890-abcdefghij", "a=1\npassword=hunter2\n",
                  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"]  # fmt: skip
# About one value in 16 secret-looking, two in 16 any text: most generated configs still load and render.
any_env_value = st.integers(0, 15).flatmap(
    lambda pick: st.sampled_from(SECRET_LOOKING) if pick == 0 else st.text(max_size=40) if pick < 3 else safe_env_value
)
# Any name, any value: for the render property, where `load` decides what is a secret.
any_env = st.dictionaries(env_name, any_env_value, max_size=3)

http_path = st.from_regex(r"\A/[a-z0-9/_.-]{0,20}\Z")
digest_image = st.builds(
    "{}@sha256:{}".format, st.sampled_from(["web", "api", "ghcr.io/acme/x", "web:1.2.3"]), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
)
image = st.one_of(
    st.builds("{}:{}.{}.{}".format, st.sampled_from(["web", "api", "team/app"]), *[st.integers(0, 20)] * 3),
    st.builds("registry.example.com:5000/{}:v{}".format, dns_label(0, 6), st.integers(0, 99)),
    digest_image,
)


# --- autoscaling (components/autoscaling_config.py) -------------------------------------------------------------

scaling_rules = st.fixed_dictionaries(
    {"stabilizationWindowSeconds": st.integers(0, 3600)}, optional={"maxPercentPerMinute": st.integers(1, 1000)}
)
scaling_behavior = st.fixed_dictionaries({}, optional={"scaleDown": scaling_rules, "scaleUp": scaling_rules})
threshold = st.one_of(st.integers(1, 10_000), st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False))
prometheus_trigger = st.fixed_dictionaries(
    {
        "type": st.just("prometheus"),
        "serverAddress": st.sampled_from(["http://kube-prometheus-stack-prometheus.monitoring.svc:9090", "https://prometheus.example.com/api"]),
        "query": st.sampled_from(["sum(queue_depth)", 'sum(rate(http_requests_total{service="web"}[2m]))', "max(lag_seconds) by (topic)"]),
        "threshold": threshold,
    },
    optional={"activationThreshold": st.integers(0, 100)},
)
cron_trigger = st.fixed_dictionaries(
    {
        "type": st.just("cron"),
        "timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
        "start": st.sampled_from(["0 8 * * 1-5", "30 6 * * *", "0 */2 * * *"]),
        "end": st.sampled_from(["0 18 * * 1-5", "0 22 * * *", "59 23 * * 0"]),
        "desiredReplicas": st.integers(1, 20),
    }
)
resource_trigger = st.fixed_dictionaries({"type": st.sampled_from(["cpu", "memory"]), "utilizationPercent": st.integers(10, 100)})


@st.composite
def keda_scaling(draw, low: int, high: int, scale_to_zero: bool) -> dict[str, Any]:
    """KEDA with 1-3 triggers (one on an outside source at least, which fallback and scaleToZero need)."""
    triggers = draw(st.lists(st.one_of(prometheus_trigger, cron_trigger, resource_trigger), min_size=1, max_size=3, unique_by=lambda t: json.dumps(t, sort_keys=True)))
    if all(trigger["type"] in ("cpu", "memory") for trigger in triggers):
        triggers.append(draw(prometheus_trigger))
    result: dict[str, Any] = {"triggers": triggers}
    if draw(st.booleans()):
        result["pollingIntervalSeconds"] = draw(st.integers(5, 3600))
    if draw(st.booleans()):
        result["cooldownPeriodSeconds"] = draw(st.integers(0, 86400))
    if scale_to_zero and draw(st.booleans()):
        result["scaleToZero"] = True
    if draw(st.booleans()):
        result["fallback"] = {"failureThreshold": draw(st.integers(1, 100)), "replicas": draw(st.integers(low, high))}
    return result


@st.composite
def vertical_scaling(draw, scaled: set[str]) -> dict[str, Any]:
    """A VPA: recommending on anything, or applying (initial/auto, with maxAllowed) to what the HPA does not scale on."""
    free = [resource for resource in ("cpu", "memory") if resource not in scaled]
    mode = draw(st.sampled_from(["recommend", "initial", "auto"])) if free else "recommend"
    result: dict[str, Any] = {} if mode == "recommend" and draw(st.booleans()) else {"mode": mode}
    pool = free if mode != "recommend" else ["cpu", "memory"]
    if mode != "recommend" or draw(st.booleans()):
        result["controlledResources"] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True))
    if mode != "recommend" or draw(st.booleans()):
        result["maxAllowed"] = {"cpu": draw(cpu())[1], "memory": draw(memory())[1]}
        if draw(st.booleans()):
            result["minAllowed"] = {"cpu": "10m", "memory": "16Mi"}  # below every maxAllowed drawn
    return result


def _at_least(current: str, needed: Decimal, resource: str) -> str:
    """A quantity no smaller than `needed` (cpu cores or memory bytes), `current` when it already is."""
    if quantity(current) >= needed:
        return current
    return f"{math.ceil(needed * 1000)}m" if resource == "cpu" else f"{math.ceil(needed / 2**20)}Mi"


def fit_capacity(draw, values: dict[str, Any]) -> None:
    """The quota and the LimitRange's max raised (never lowered) to what the generated workloads need at their maxima,
    as components/capacity_config.py counts them: a valid config fits its namespace."""
    top_level = {key: value for key, value in values.items() if key in stack_config.TOP_LEVEL_KEYS}
    try:
        config = stack_config.StackConfig.model_validate(top_level)
    except ValueError:
        return  # not a valid config after all: load reports why
    workloads = capacity_config.workloads_of(config)
    quota, maximum = values["quota"], values["containerDefaults"]["max"]
    slack = draw(st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(3)]))
    for (kind, resource), (key, _) in capacity_config.QUOTA_FIELDS.items():
        needed = sum((w.pods * quantity(getattr(getattr(w.resources, kind), resource)) for w in workloads), Decimal(0))
        quota[key] = _at_least(quota[key], needed * slack, resource)
    quota["pods"] = max(quota["pods"], sum(w.pods for w in workloads))
    for resource in ("cpu", "memory"):
        largest = max((quantity(getattr(w.resources.limits, resource)) for w in workloads), default=Decimal(0))
        maximum[resource] = _at_least(maximum[resource], largest, resource)


# --- services and databases -----------------------------------------------------------------------------------


def _cron_field(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    number = st.integers(low, high).map(str)
    named = st.sampled_from(names) if names else number
    single = st.one_of(number, named)
    ranged = st.tuples(st.integers(low, high), st.integers(low, high)).map(lambda pair: f"{min(pair)}-{max(pair)}")
    stepped = st.tuples(st.sampled_from(["*", str(low)]), st.integers(1, high - low + 1)).map(lambda pair: f"{pair[0]}/{pair[1]}")
    part = st.one_of(single, ranged, stepped)
    return st.one_of(st.just("*"), part, st.lists(part, min_size=2, max_size=3).map(",".join))


cron_schedule_text = st.one_of(
    st.sampled_from(["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"]),
    st.tuples(
        _cron_field(0, 59),
        _cron_field(0, 23),
        _cron_field(1, 28),  # every month has these days: a schedule that never runs is refused
        _cron_field(1, 12, ("JAN", "mar", "Jun", "DEC")),
        _cron_field(0, 6, ("SUN", "mon", "FRI")),
    ).map(" ".join),
)
command_words = st.lists(st.from_regex(r"\A[A-Za-z0-9/=._-]{1,12}\Z"), min_size=1, max_size=3)
arguments = st.lists(st.from_regex(r"\A[A-Za-z0-9 /=._:-]{0,12}\Z"), max_size=4)


@st.composite
def cron_settings(draw) -> dict[str, Any]:
    result: dict[str, Any] = {"schedule": draw(cron_schedule_text)}
    optional = {
        "timeZone": st.sampled_from(["Etc/UTC", "Europe/Dublin", "America/New_York", "Asia/Kolkata"]),
        "concurrencyPolicy": st.sampled_from(["Forbid", "Replace"]),
        "startingDeadlineSeconds": st.integers(10, 86400),
        "activeDeadlineSeconds": st.integers(30, 86400),
        "backoffLimit": st.integers(0, 10),
        "successfulJobsHistoryLimit": st.integers(0, 10),
        "failedJobsHistoryLimit": st.integers(1, 10),
    }
    result.update(draw(st.fixed_dictionaries({}, optional=optional)))
    return result


one_off_job = st.fixed_dictionaries(
    {"command": command_words}, optional={"args": arguments, "timeoutSeconds": st.integers(30, 3600)}
)


@st.composite
def service(draw, stack: str, name: str, others: list[str], template: dict[str, Any], reserved_env: set[str], secret_values: dict[str, str], env_values, kind: str = "web") -> dict[str, Any]:
    """One service of `kind`; `others` are the web services it may call."""
    minimum = MIN_REPLICAS[stack]
    result: dict[str, Any] = {
        "name": name,
        "image": draw(digest_image if stack == "prod" else image),  # prod pins by digest
        "resources": draw(resources()),
    }
    if kind == "web":
        result["port"] = draw(st.integers(1024, 65535))
    if kind != "web" or draw(st.integers(0, 3)) == 0:
        result["kind"] = kind
    if draw(st.booleans()):
        result["command"] = draw(command_words)
    if draw(st.booleans()):
        result["args"] = draw(arguments)
    if draw(st.integers(0, 3)) == 0:
        result["tasks"] = [{"name": task, **draw(one_off_job)} for task in draw(st.lists(st.sampled_from(["backfill", "reindex", "seed"]), min_size=1, max_size=2, unique=True))]
    scaled: set[str] = set()  # cpu/memory the horizontal autoscaler scales on
    if kind == "cron":
        result.update(draw(cron_settings()))
    elif stack == "prod" or draw(st.booleans()):
        low = draw(st.integers(minimum, minimum + 5))
        high = draw(st.integers(low, low + 20))
        result["autoscaling"] = {"minReplicas": low, "maxReplicas": high}
        if draw(st.integers(0, 2)) == 0:
            result["autoscaling"]["keda"] = draw(keda_scaling(low, high, scale_to_zero=stack != "prod"))
            scaled = {t["type"] for t in result["autoscaling"]["keda"]["triggers"]} & {"cpu", "memory"}
        else:
            for key in ("targetCpuPercent", "targetMemoryPercent"):
                if draw(st.booleans()):
                    result["autoscaling"][key] = draw(st.integers(10, 100))
            scaled = {r for r, key in (("cpu", "targetCpuPercent"), ("memory", "targetMemoryPercent")) if key in result["autoscaling"]} or {"cpu"}
        if draw(st.booleans()):
            result["autoscaling"]["behavior"] = draw(scaling_behavior)
    elif draw(st.booleans()) or minimum > 1:
        result["replicas"] = draw(st.integers(minimum, minimum + 4))
    if kind != "cron" and draw(st.integers(0, 2)) == 0:
        result["vertical"] = draw(vertical_scaling(scaled))
    env = {key: value for key, value in draw(env_values).items() if key not in reserved_env}
    if env or draw(st.booleans()):
        result["env"] = env
    # secretEnv: the template's (its keys exist, encrypted) and maybe one of its own, whose key is added encrypted.
    secret_env = {k: v for k, v in template.get("secretEnv", {}).items() if k not in env and draw(st.booleans())}
    if draw(st.booleans()):
        own = draw(env_name.filter(lambda n: n not in env and n not in reserved_env))
        key = f"{name}-{own.lower().replace('_', '-')}"
        secret_env[own] = key
        secret_values[key] = f"{PLACEHOLDER}-{PROJECT}:{key}"
    if secret_env:
        result["secretEnv"] = secret_env
    if kind == "web" and draw(st.booleans()):
        result["health"] = {"livenessPath": draw(http_path), "readinessPath": draw(http_path)}
    elif kind == "worker":  # probed by a command, or over HTTP on a port of its own
        by_port = st.fixed_dictionaries({"port": st.integers(1024, 65535)}, optional={"livenessPath": http_path})
        result["health"] = draw(st.one_of(st.fixed_dictionaries({"command": command_words}), by_port))
    calls = draw(st.lists(st.sampled_from(others), unique=True, max_size=3)) if others else []
    if calls:
        result["calls"] = calls
    if kind != "cron" and draw(st.booleans()):
        metrics_port = draw(st.integers(1024, 65535).filter(lambda port: port != result.get("port")))
        result["metrics"] = {"port": metrics_port, "path": draw(http_path)}
    if draw(st.booleans()):
        result["runAsUser"] = draw(st.integers(1, 2**31 - 1))
        result["runAsGroup"] = draw(st.integers(1, 2**31 - 1))
    return result


pg_identifier = st.from_regex(r"\A[a-z_][a-z0-9_]{0,20}\Z")
POSTGRES_PARAMETERS = {"max_connections": st.integers(10, 500), "shared_buffers": st.sampled_from(["128MB", "256MB", "1GB"]),
                       "work_mem": st.sampled_from(["4MB", "16MB"]), "log_min_duration_statement": st.sampled_from([-1, 250, "1s"])}  # fmt: skip


@st.composite
def database(draw, stack: str, name: str, services: list[str], env_prefix: str) -> dict[str, Any]:
    minimum = MIN_REPLICAS[stack]
    size = st.builds("{}Gi".format, st.integers(1, 500))
    result: dict[str, Any] = {
        "name": name,
        "instances": draw(st.integers(minimum, 9)),
        "storage": {"size": draw(size)},
        "resources": draw(resources()),
        "envPrefix": env_prefix,
        "usedBy": draw(st.lists(st.sampled_from(services), unique=True, max_size=len(services))),
    }
    if draw(st.booleans()):
        result["storage"]["storageClass"] = draw(st.sampled_from(["gp3", "standard", "local-path"]))
    if draw(st.booleans()):
        result["walStorage"] = {"size": draw(size)}
    result["parameters"] = draw(st.fixed_dictionaries({}, optional=POSTGRES_PARAMETERS))
    if draw(st.booleans()):
        result["database"] = draw(pg_identifier)
    if draw(st.booleans()):
        result["owner"] = draw(pg_identifier)
    if draw(st.booleans()):
        result["enableSuperuserAccess"] = draw(st.booleans())
    hex_digest = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
    if stack == "prod" or draw(st.booleans()):
        image = draw(st.sampled_from(["ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie", "registry.example.com/pg:17"]))
        result["imageName"] = f"{image}@sha256:{draw(hex_digest)}" if stack == "prod" or draw(st.booleans()) else image
    if draw(st.booleans()):
        max_connections = result["parameters"].get("max_connections", 100)
        instances = draw(st.integers(minimum, 4))
        if max_connections - 10 >= instances:
            pooler = {
                "instances": instances,
                "defaultPoolSize": draw(st.integers(1, (max_connections - 10) // instances)),
                "poolMode": draw(st.sampled_from(["transaction", "session"])),
            }
            if draw(st.booleans()):
                pooler["maxClientConnections"] = draw(st.integers(10, 5000))
            if stack == "prod":
                pooler["image"] = f"ghcr.io/cloudnative-pg/pgbouncer:1.25.1@sha256:{draw(hex_digest)}"
            result["pooler"] = pooler
    backup = {}
    if stack != "prod" and draw(st.booleans()):
        backup["enabled"] = draw(st.booleans())
    if draw(st.booleans()):
        backup["schedule"] = draw(st.sampled_from(["0 0 3 * * *", "0 30 1 * * 0", "*/30 * * * * *"]))
    if backup:
        result["backup"] = backup
    return result


# Caches: a node, or replicas with Sentinels (always in prod), memory within the LimitRange (local's max is 1Gi),
# sometimes an external one with its password in encrypted config.
CACHE_PREFIXES = ["REDIS", "SESSIONS_REDIS"]


@st.composite
def cache(draw, stack: str, name: str, services: list[str], env_prefix: str, secret_values: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "usedBy": draw(st.lists(st.sampled_from(services), unique=True, min_size=1, max_size=len(services))), "envPrefix": env_prefix}
    if draw(st.integers(0, 4)) == 0:
        key = f"{name}-password"
        secret_values[key] = f"{PLACEHOLDER}-{name}"
        host = draw(st.sampled_from(["10.20.30.40", "cache.example.internal", "my-cache.abc123.euw1.cache.amazonaws.com"]))
        result["external"] = {"host": host, "passwordKey": key, **draw(st.fixed_dictionaries({}, optional={"port": st.integers(1, 65535), "tls": st.booleans()}))}
        return result
    limit = draw(st.integers(64, 1024))
    result["resources"] = {"requests": {"cpu": "50m", "memory": f"{draw(st.integers(32, limit))}Mi"}, "limits": {"cpu": "500m", "memory": f"{limit}Mi"}}
    if stack == "prod" or draw(st.booleans()):
        result["replicas"] = draw(st.integers(1, 3))
        result["failover"] = draw(st.fixed_dictionaries({}, optional={"sentinels": st.just(5), "quorum": st.just(3), "downAfterMilliseconds": st.integers(1000, 60_000)}))
    if draw(st.booleans()):
        result["maxmemoryPolicy"] = draw(st.sampled_from(MAXMEMORY_POLICIES))
    if draw(st.booleans()):
        result["maxmemory"] = f"{draw(st.integers(1, limit - 1))}Mi"
    mode = draw(st.sampled_from(["none", "aof", "rdb"]))
    if mode != "none":
        result["persistence"] = {"mode": mode, "size": f"{draw(st.integers(1, 50))}Gi", **draw(st.fixed_dictionaries({}, optional={"storageClass": st.sampled_from(["gp3", "standard"])}))}
    if stack == "prod":
        hex_digest = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
        result["image"] = f"{DEFAULT_VALKEY_IMAGE}@sha256:{draw(hex_digest)}"
        result["exporterImage"] = f"{DEFAULT_EXPORTER_IMAGE}@sha256:{draw(hex_digest)}"
    return result


# Label values as people write them (a random-looking one is refused like a token: see test_config_secrets.py).
label_value = st.one_of(
    st.from_regex(r"\A[a-z0-9]([-a-z0-9_.]{0,20}[a-z0-9])?\Z"),
    st.sampled_from(["Envoy", "envoy-gateway", "v1.2.3", "Prometheus_2", "kube-prometheus-stack", "A"]),
)
label_map = st.dictionaries(st.sampled_from(["app", "app.kubernetes.io/name", "example.com/role", "release", "tier"]), label_value, min_size=1, max_size=3)
hostname = st.builds("{}.{}".format, dns_label(0, 10, first=LOWER), st.sampled_from(["example.com", "localtest.me", "shop.example.org"]))


@st.composite
def ingress(draw, base: dict[str, Any], services: list[str]) -> dict[str, Any]:
    """The stack's way in with generated hosts and routes, in gateway or ingress mode."""
    result = copy.deepcopy(base)
    count = draw(st.integers(1, 3))
    hosts = [base["hosts"][0]["host"]] + draw(st.lists(hostname.filter(lambda h: h != base["hosts"][0]["host"]), min_size=count - 1, max_size=count - 1, unique=True))
    slugs = [host.replace(".", "-")[:52].rstrip("-") for host in hosts]
    if len(set(slugs)) != len(slugs):
        hosts = hosts[:1]
    result["hosts"] = []
    for host in hosts:
        paths = draw(st.lists(st.sampled_from(["/", "/api", "/v1", "/static/", "/a/b", "/api/v2", "/~user", "/@x"]), min_size=1, max_size=3, unique_by=lambda p: p.rstrip("/") or "/"))
        entry = {"host": host, "routes": [{"path": path, "service": draw(st.sampled_from(services))} for path in paths]}
        if draw(st.integers(0, 3)) == 0:
            entry["tlsSecretName"] = f"{host.replace('.', '-')[:50].rstrip('-')}-cert"
        result["hosts"].append(entry)
    if draw(st.booleans()):
        result["controllerPodLabels"] = draw(label_map)
    if draw(st.integers(0, 2)) == 0:
        result["mode"] = "ingress"
        result["ingressClassName"] = draw(st.sampled_from(["traefik", "nginx", "haproxy"]))
        result.pop("gatewayClassName", None)
        result.pop("gatewayRef", None)  # a shared Gateway is gateway mode only
        result.pop("timeouts", None)
        if draw(st.booleans()):
            result["annotations"] = draw(st.dictionaries(
                st.sampled_from(["nginx.ingress.kubernetes.io/proxy-body-size", "traefik.ingress.kubernetes.io/router.middlewares", "example.com/owner"]),
                st.sampled_from(["8m", "default-ratelimit@kubernetescrd", "team-a", "60"]), max_size=2))
    else:
        if "gatewayRef" not in result and draw(st.integers(0, 3)) == 0:  # the cluster owners' Gateway instead of ours
            result.pop("gatewayClassName", None)
            result["gatewayRef"] = {"name": "shared", "namespace": "gateway-system", "sectionName": "https"}
        if draw(st.booleans()):
            result["hsts"] = {"maxAgeSeconds": draw(st.sampled_from([0, 300, 31536000])), "includeSubDomains": draw(st.booleans())}
    if result.get("mode") != "ingress" and draw(st.booleans()):
        backend = draw(st.integers(1, 120))
        result["timeouts"] = {"request": f"{backend + draw(st.integers(0, 120))}s", "backendRequest": f"{backend}s"}
    return result


# --- whole stacks ---------------------------------------------------------------------------------------------


@st.composite
def valid_case(draw, stacks=STACKS, env_values=safe_env, runbook_templates=None) -> Case:
    """A config `load` must accept: a shipped stack file with generated services, databases, routes, monitoring."""
    stack = draw(st.sampled_from(stacks))
    values, secret_keys = shipped(stack)
    templates = values["services"]
    values["namespace"] = draw(dns_label(0, 14).filter(lambda n: n != "default" and not n.startswith("kube-")))
    quota = values["quota"]
    quota["pods"] = draw(st.integers(1, 500))
    if draw(st.booleans()):
        (_, quota["requestsCpu"]), (_, quota["requestsMemory"]) = draw(cpu()), draw(memory())

    count = draw(st.integers(1, 4))
    names = draw(st.lists(service_name, min_size=count, max_size=count, unique=True))
    database_count = draw(st.integers(0, 2))
    database_names = draw(st.lists(database_name.filter(lambda n: n not in names), max_size=database_count, min_size=database_count, unique=True))
    prefixes = ["DATABASE", "ORDERS_DB", "SECOND_DATABASE"][:database_count]
    injected = {f"{prefix}_{suffix}" for prefix in prefixes for suffix in stack_config.DATABASE_ENV_SUFFIXES}
    injected |= {f"{prefix}_{suffix}" for prefix in CACHE_PREFIXES for suffix in CACHE_ENV_SUFFIXES}
    secret_values: dict[str, str] = {}
    # The first is a web service (the routes need one); the others of any kind. Only web services can be called.
    kinds = ["web"] + [draw(st.sampled_from(["web", "worker", "cron"])) for _ in names[1:]]
    web_names = [name for name, kind in zip(names, kinds) if kind == "web"]
    services = [
        draw(service(stack, name, web_names, templates[index % len(templates)], injected, secret_values, env_values, kind))
        for index, (name, kind) in enumerate(zip(names, kinds))
    ]
    values["services"] = services
    for key, value in secret_values.items():
        values[key] = value
        secret_keys.add(key)
    # Secret keys no service names any more are dropped at the end: a stack's unused secret is a config error.

    values["databases"] = [draw(database(stack, name, names, prefix)) for name, prefix in zip(database_names, prefixes)]
    # Pooler objects are named <database>-pooler-rw: a service of that name is refused, so none is generated.
    names_taken = {f"{d['name']}-pooler-rw" for d in values["databases"] if "pooler" in d} & set(names)
    for database_values in values["databases"]:
        if f"{database_values['name']}-pooler-rw" in names_taken:
            database_values.pop("pooler")
    first = values["databases"][0] if values["databases"] else None
    backed_up = first is not None and isinstance(values.get("backups"), dict) and first.get("backup", {}).get("enabled", True)
    if len(values["databases"]) == 2 and backed_up and draw(st.booleans()):
        restore = {"source": first["name"]}
        if draw(st.booleans()):
            restore["targetTime"] = draw(st.sampled_from(["2026-01-31T23:59:59Z", "2025-06-01T08:00:00+02:00", "2026-11-29T12:00:00.5Z"]))
        values["databases"][1]["restore"] = restore
    if not values["databases"] and draw(st.booleans()):
        values.pop("databases")
    taken = set(names) | set(database_names)
    cache_names = draw(st.lists(service_name.filter(lambda n: n not in taken and f"{n}-sentinel" not in taken), max_size=2, unique=True))
    cache_secrets: dict[str, str] = {}
    values["caches"] = [draw(cache(stack, name, names, prefix, cache_secrets)) for name, prefix in zip(cache_names, CACHE_PREFIXES)]
    for key, value in cache_secrets.items():
        values[key] = value
        secret_keys.add(key)
    if not values["caches"] and draw(st.booleans()):
        values.pop("caches")

    if "ingress" in values:
        if draw(st.integers(0, 4)) == 0:
            values.pop("ingress")
        else:
            values["ingress"] = draw(ingress(values["ingress"], web_names))

    if draw(st.integers(0, 5)) == 0:  # GitOps: YAML to a folder instead of a cluster (with or without one)
        values["kubernetes"] = {**({} if draw(st.booleans()) else values["kubernetes"]), "renderDirectory": "build/rendered", "renderSecretsInPlaintext": True}
    cnpg = values.setdefault("cnpg", {})
    if draw(st.booleans()):
        cnpg["apiServerPorts"] = draw(st.lists(st.integers(1, 65535), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        cnpg["apiServerCidrs"] = draw(st.lists(st.sampled_from(["10.96.0.1/32", "172.18.0.0/16", "10.0.0.0/8", "fd00::/64", "192.168.1.10"]), min_size=1, max_size=3, unique=True))
    if "podSecurity" in stack_config.TOP_LEVEL_KEYS and draw(st.integers(0, 3)) == 0:
        values["podSecurity"] = {"version": draw(st.sampled_from(["latest", "v1.0", "v1.22", "v1.25", "v1.30", "v1.35", "v1.99"]))}
    if draw(st.integers(0, 2)) == 0:  # team access: groups as identity providers name them, each role at most once
        grants = draw(st.lists(st.tuples(st.sampled_from(["platform-team", "oncall", "ci:deploy", "Data Science"]), st.sampled_from(["view", "edit", "deployer"])), unique=True, max_size=4))
        values["access"] = [{"group": group, "role": role} for group, role in grants]
    if isinstance(values.get("backups"), dict):
        backups = values["backups"]
        if draw(st.booleans()):
            backups["retentionDays"] = draw(st.integers(1, 3650))
        if draw(st.booleans()):
            backups["compression"] = draw(st.sampled_from(["gzip", "bzip2", "lz4", "snappy"]))
        if draw(st.booleans()):
            backups["encryption"] = draw(st.sampled_from(["AES256", "aws:kms"]))

    monitoring = values.setdefault("monitoring", {})
    if draw(st.booleans()):
        monitoring["scrapeInterval"] = draw(st.sampled_from(["15s", "30s", "1m", "1m30s", "2m"]))
    if draw(st.booleans()):
        monitoring["slo"] = {
            "availabilityPercent": draw(st.sampled_from([90, 99, 99.5, 99.9, 99.95, 99.99])),
            "latencyPercent": draw(st.sampled_from([50, 90, 95, 99, 99.9])),
            "latencySeconds": draw(st.sampled_from([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])),
        }
    if draw(st.booleans()):
        monitoring["selectorLabels"] = {"release": draw(st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z"))}
    if draw(st.booleans()):
        monitoring["prometheusPodLabels"] = draw(label_map)
    if draw(st.booleans()):
        monitoring["httpMetrics"] = {"requestsTotal": draw(st.from_regex(r"\A[a-z_:][a-z0-9_:]{0,30}\Z")), "statusLabel": draw(st.sampled_from(["code", "status", "status_code"]))}
    if draw(st.booleans()):
        monitoring["databases"] = {"replicationLagSeconds": draw(st.integers(1, 3600)), "backupMaxAgeHours": draw(st.integers(1, 200)), "storageFreePercent": draw(st.integers(1, 50))}
    if runbook_templates is not None and draw(st.integers(0, 3)) == 0:
        monitoring["runbookUrlTemplate"] = draw(runbook_templates)
    for database_values in values.get("databases", []):  # KEDA on a database its service uses (with the credentials)
        for user in database_values.get("usedBy", []):
            keda = next((s.get("autoscaling", {}).get("keda") for s in services if s["name"] == user), None)
            if keda is not None and draw(st.integers(0, 2)) == 0:
                keda["triggers"].append({"type": "postgresql", "database": database_values["name"], "query": "SELECT count(*) FROM jobs", "targetQueryValue": draw(st.integers(1, 500))})
    for cache_values in values.get("caches", []):  # KEDA on a queue in a cache its service uses (with the password)
        for user in cache_values.get("usedBy", []):
            keda = next((s.get("autoscaling", {}).get("keda") for s in services if s["name"] == user), None)
            if keda is not None and draw(st.integers(0, 2)) == 0:
                keda["triggers"].append({"type": "redis", "cache": cache_values["name"], "listName": draw(st.sampled_from(["jobs", "analytics:jobs"])), "listLength": draw(st.integers(1, 500))})
    if draw(st.booleans()):
        values["keda"] = {"operatorNamespace": draw(st.sampled_from(["keda", "autoscalers"]))}
    fit_capacity(draw, values)
    # Names chosen to recreate one another's object names (NAME_SUFFIXES) sometimes do: such a config is not valid
    # (stack_config refuses it, components/object_names.py); the `name-neighbour` mutation makes them on purpose.
    assume(not object_names.collisions(object_names.claims(values)))
    named = stack_config.secret_keys_in(values)
    for key in [key for key in secret_keys if key not in named]:
        values.pop(key, None)
        secret_keys.discard(key)
    return Case(stack, values, secret_keys)


# Runbook URL templates users write: the placeholder, sometimes with a conversion or format spec.
runbook_template = st.builds(
    "https://{}.example.com/{}{{alert{}{}}}{}".format,
    st.sampled_from(["runbooks", "wiki"]),
    st.sampled_from(["", "runbooks/", "alerts/#"]),
    st.sampled_from(["", "", "", "", "!s", "!r", "!a"]),
    st.sampled_from(["", "", "", "", "", ":", ":>30", ":s", ":d", ":.3", ":x", ":{alert}"]),
    st.sampled_from(["", ".md", "?from=alertmanager"]),
)


# --- mutations --------------------------------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) into nested dicts and lists, the root's children included."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        found.append(prefix + (key,))
        found += _paths(item, prefix + (key,))
    return found


def _parent(values: dict, path: tuple) -> Any:
    node: Any = values
    for part in path[:-1]:
        node = node[part]
    return node


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=12))


def _json_collections(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3))


json_value = st.recursive(json_scalar, _json_collections, max_leaves=6)
BAD_NAMES = ["", "Web", "with space", "under_score", "-lead", "trail-", "x" * 64, "ünïcode", "default", "kube-system", "../x",
             "a.b", "1", "0" * 300, "latest", "web:latest", "$(VAR)", "null", "{}", "[]"]  # fmt: skip
BAD_NUMBERS = [-1, 0, 1, 80, 1023, 65536, 2**31, 2**63, -(2**63), 10**30, 1.5, -0.0, 1e308, float("inf")]


def _list_at(values: dict, key: str) -> list:
    """values[key] when an earlier mutation left it a list, else []."""
    found = values.get(key)
    return found if isinstance(found, list) else []


def _set_at(values, path, new) -> None:
    _parent(values, path)[path[-1]] = new


@st.composite
def mutated_case(draw, stacks=STACKS) -> Case:
    """A valid config broken 1-3 ways; `load` may still accept some (dropping an optional key)."""
    case = draw(valid_case(stacks))
    values = case.values
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(MUTATION_KINDS))
        paths = _paths(values)
        if kind == "wrong-type":
            path = draw(st.sampled_from(paths))
            _set_at(values, path, draw(json_value))
        elif kind == "missing-key":
            path = draw(st.sampled_from([p for p in paths if isinstance(_parent(values, p), dict)]))
            del _parent(values, path)[path[-1]]
        elif kind == "unknown-key":
            dicts = [()] + [p for p in paths if isinstance(_parent(values, p + ("?",)), dict)]
            target = draw(st.sampled_from(dicts))
            node = _parent(values, target + ("?",))
            node[draw(st.sampled_from(["replica", "imageTag", "Name", "enabled_", "x"]) | st.text(min_size=1, max_size=10))] = draw(json_scalar)
        elif kind == "out-of-range":
            numbers = [p for p in paths if isinstance(_parent(values, p)[p[-1]], (int, float)) and not isinstance(_parent(values, p)[p[-1]], bool)]
            if numbers:
                _set_at(values, draw(st.sampled_from(numbers)), draw(st.sampled_from(BAD_NUMBERS) | st.integers()))
        elif kind == "bad-name":
            strings = [p for p in paths if isinstance(_parent(values, p)[p[-1]], str)]
            if strings:
                _set_at(values, draw(st.sampled_from(strings)), draw(st.sampled_from(BAD_NAMES) | st.text(max_size=20)))
        elif kind == "raw-text":
            key = draw(st.sampled_from(stack_config.TOP_LEVEL_KEYS))
            case.raw[key] = draw(st.sampled_from(["{broken", "[1,", "{}", "[]", "null", "true", "42", '"quoted"', "[[]]", '{"a":', "{ }", "[", " {"]) | st.text(max_size=20))
        elif kind == "top-level-type":
            key = draw(st.sampled_from(stack_config.TOP_LEVEL_KEYS))
            values[key] = draw(st.lists(json_scalar, max_size=2) | st.dictionaries(st.text(max_size=5), json_scalar, max_size=2) | json_scalar)
        elif kind == "duplicate":
            lists = [p for p in paths if isinstance(_parent(values, p)[p[-1]], list) and _parent(values, p)[p[-1]]]
            if lists:
                path = draw(st.sampled_from(lists))
                items = _parent(values, path)[path[-1]]
                items.append(copy.deepcopy(draw(st.sampled_from(items))))
        elif kind == "empty":
            collections = [p for p in paths if isinstance(_parent(values, p)[p[-1]], (list, dict))]
            if collections:
                path = draw(st.sampled_from(collections))
                _set_at(values, path, [] if isinstance(_parent(values, path)[path[-1]], list) else {})
        elif kind == "secret-in-plaintext":
            if case.secret_keys:
                key = draw(st.sampled_from(sorted(case.secret_keys)))
                if draw(st.booleans()):
                    case.secret_keys.discard(key)
                else:
                    values.pop(key, None)
        elif kind == "secret-in-env":
            services = values.get("services")
            if isinstance(services, list) and services and isinstance(services[0], dict):
                target = draw(st.sampled_from(services))
                if isinstance(target, dict) and isinstance(target.get("env", {}), dict):
                    target.setdefault("env", {})[draw(env_name)] = draw(st.sampled_from(SECRET_LOOKING))
        elif kind == "count-as-boolean":
            counts = [p for p in paths if type(_parent(values, p)[p[-1]]) is int]
            if counts:
                _set_at(values, draw(st.sampled_from(counts)), draw(st.booleans()))
        elif kind == "beyond-int32":
            counts = [p for p in paths if type(_parent(values, p)[p[-1]]) is int]
            if counts:
                _set_at(values, draw(st.sampled_from(counts)), draw(st.sampled_from([2**31, 3_000_000_000, -(2**31) - 1, 2**63])))
        elif kind == "bad-image":
            images = [p for p in paths if p[-1] in ("image", "imageName")]
            if images:
                _set_at(values, draw(st.sampled_from(images)), draw(st.sampled_from(["Web:1.4.2", "web :1.4.2", "", "web:1.4.2\n", " web:1", "web@sha256:abc"])))
        elif kind == "trailing-newline":
            strings = [p for p in paths if isinstance(_parent(values, p)[p[-1]], str) and p[-1] in ("name", "namespace", "image", "roleArn", "group")]
            if strings:
                path = draw(st.sampled_from(strings))
                _set_at(values, path, _parent(values, path)[path[-1]] + "\n")
        elif kind == "unquoted-date":  # what the CLI passes for an unquoted date (tools/stack_yaml.py)
            services = [s for s in _list_at(values, "services") if isinstance(s, dict) and isinstance(s.get("env", {}), dict)]
            if services:
                draw(st.sampled_from(services)).setdefault("env", {})["RELEASED"] = draw(st.sampled_from(["2026-11-30 00:00:00 +0000 UTC", "2026-11-30 09:15:00 +0200 +0200"]))
        elif kind == "top-level-typo":
            values[draw(st.sampled_from(["servics", "monitorng", "acess", "databse", "ingres", "quotas"]))] = draw(json_value)
        elif kind == "name-neighbour":  # a service named like an object another entry makes (components/object_names.py)
            services = values.get("services")
            others = [d.get("name") for d in _list_at(values, "databases") + _list_at(values, "caches") if isinstance(d, dict)]
            if isinstance(services, list) and services and isinstance(services[0], dict) and others:
                other = draw(st.sampled_from([name for name in others if isinstance(name, str)] or ["x"]))
                neighbour = {k: v for k, v in services[0].items() if k not in ("migrations", "tasks", "secretEnv")}
                services.append({**neighbour, "name": draw(st.sampled_from([f"{other}-database", f"{other}-rw", f"{other}-app", f"{other}-sentinel", "default-deny"]))})
        case.mutations.append(kind)
    return case


MUTATION_KINDS = ["wrong-type", "missing-key", "unknown-key", "out-of-range", "bad-name", "raw-text", "top-level-type",
                  "duplicate", "empty", "secret-in-plaintext", "secret-in-env", "count-as-boolean", "beyond-int32", "bad-image",
                  "trailing-newline", "unquoted-date", "top-level-typo", "name-neighbour"]  # fmt: skip
