"""The `caches[]` stack config key: one components.cache.Cache per cache (Valkey, the Redis protocol).

A cache is deployed here (a primary, optional replicas and Sentinels for failover) or `external` (a managed cache
such as ElastiCache or Memorystore: nothing is deployed, the services get the same wiring). Either way the services
in `usedBy` get its connection details from a Secret, and only they may connect.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from components.autoscaling_config import quantity
from components.database_cluster_config import DATABASE_ENV_SUFFIXES
from components.config_base import CONFIG_KEY, DNS_1035_LABEL, QUANTITY, CamelModel, ComputeAmounts, ContainerResources, image_tag, pinned_image

# The containers components/cache.py runs beside Valkey, sized here so the quota check (components/capacity_config.py)
# counts them: the metrics exporter in every data node's pod, and each Sentinel.
EXPORTER_RESOURCES = ContainerResources(requests=ComputeAmounts(cpu="10m", memory="32Mi"), limits=ComputeAmounts(cpu="100m", memory="64Mi"))
SENTINEL_RESOURCES = ContainerResources(requests=ComputeAmounts(cpu="20m", memory="32Mi"), limits=ComputeAmounts(cpu="200m", memory="64Mi"))

# Valkey 8.1 (BSD-3-Clause; the Redis 7.2.4 fork): the engine a deployed cache runs. Moving the version changes the
# StatefulSet's image, which restarts the data nodes one by one (README, "Caches": what the preview says about it).
VALKEY_VERSION = "8.1.4"
DEFAULT_VALKEY_IMAGE = f"docker.io/valkey/valkey:{VALKEY_VERSION}"
# The Prometheus exporter beside each data node (MIT); it reads Valkey as it reads Redis.
DEFAULT_EXPORTER_IMAGE = "docker.io/oliver006/redis_exporter:v1.67.0"
# The uid/gid the Valkey image's `valkey` user has (and the exporter runs as here): never root.
VALKEY_UID = 999

# What a service using a cache gets, each as <envPrefix>_<suffix> (components.cache fills them in): URL and PASSWORD
# from the cache's Secret, the rest in its ConfigMap. With failover, SENTINELS/MASTER_NAME instead of HOST/PORT.
CACHE_ENV_SUFFIXES = ("URL", "PASSWORD", "HOST", "PORT", "TLS", "SENTINELS", "MASTER_NAME")

# Eviction policies both Valkey 8 and Redis 7.0 accept (maxmemory-policy).
MAXMEMORY_POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
)  # fmt: skip

def quantity_bytes(text: str) -> int:
    """A memory quantity in bytes: '512Mi' -> 536870912."""
    return int(quantity(text))


class CachePersistence(CamelModel):
    """What survives a restart: nothing (a pure cache), an append-only file, or periodic snapshots, on a volume."""

    mode: Literal["none", "aof", "rdb"] = "none"
    size: Optional[str] = Field(default=None, pattern=QUANTITY)  # a PersistentVolumeClaim per data node
    storage_class: Optional[str] = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

    @model_validator(mode="after")
    def volume_when_persistent(self) -> "CachePersistence":
        if self.mode != "none" and self.size is None:
            raise ValueError(f"mode '{self.mode}' writes to a volume: set 'size' (e.g. 5Gi), at least twice maxmemory for aof")
        if self.mode == "none" and (self.size is not None or self.storage_class is not None):
            raise ValueError("'size'/'storageClass' without a persistent mode: set mode 'aof' or 'rdb', or remove them")
        return self


class CacheFailover(CamelModel):
    """Sentinels watching the primary: when it is down for `downAfterMilliseconds` in the eyes of `quorum` of them,
    they promote a replica. An odd number of Sentinels, on different nodes, survives losing one."""

    sentinels: int = Field(default=3, ge=3, le=7)
    quorum: Optional[int] = Field(default=None, ge=1)  # unset: a majority of the Sentinels
    down_after_milliseconds: int = Field(default=5000, ge=1000, le=60_000)
    failover_timeout_milliseconds: int = Field(default=60_000, ge=10_000, le=600_000)

    @property
    def majority(self) -> int:
        return self.quorum if self.quorum is not None else self.sentinels // 2 + 1

    @model_validator(mode="after")
    def quorum_is_a_majority(self) -> "CacheFailover":
        if self.quorum is not None and not self.sentinels // 2 < self.quorum <= self.sentinels:
            raise ValueError(
                f"quorum {self.quorum} of {self.sentinels} sentinels: set it to a majority "
                f"({self.sentinels // 2 + 1}..{self.sentinels}), or two halves of a split network could each promote a primary"
            )
        return self


class ExternalCache(CamelModel):
    """A managed cache outside the cluster: where it is, and the config key holding its password (set --secret)."""

    host: str = Field(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")
    port: int = Field(default=6379, ge=1, le=65535)
    tls: bool = True
    password_key: str = Field(pattern=CONFIG_KEY)
    # Where the services may connect to (egress). Unset: the host itself when it is an address, else every private
    # address (a managed cache's endpoint resolves into the VPC).
    cidrs: list[str] = Field(default_factory=list)


class CacheConfig(CamelModel):
    """One cache and the services allowed to use it."""

    # A Service is named after it (a DNS-1035 label); 40 leaves room for '-sentinel-headless'.
    name: str = Field(pattern=DNS_1035_LABEL, max_length=40)
    used_by: list[str] = Field(default_factory=list)
    # The Valkey image, pinned by tag (and by digest in prod): its tag is the engine version.
    image: str = DEFAULT_VALKEY_IMAGE
    exporter_image: str = DEFAULT_EXPORTER_IMAGE
    # Replicas beside the primary (each a full copy): with failover at least one.
    replicas: int = Field(default=0, ge=0, le=5)
    failover: Optional[CacheFailover] = None
    resources: Optional[ContainerResources] = None  # required unless external
    # Unset: derived from the memory limit with headroom (components.cache.derived_maxmemory).
    maxmemory: Optional[str] = Field(default=None, pattern=QUANTITY)
    maxmemory_policy: Literal[MAXMEMORY_POLICIES] = "allkeys-lru"
    persistence: CachePersistence = CachePersistence()
    env_prefix: str = Field(default="REDIS", pattern=r"^[A-Z][A-Z0-9_]*$")
    external: Optional[ExternalCache] = None

    @field_validator("image", "exporter_image")
    @classmethod
    def image_is_pinned(cls, image: str) -> str:
        return pinned_image(image)

    @model_validator(mode="after")
    def deployable(self) -> "CacheConfig":
        if self.external is not None:
            deployed_only = [
                key
                for key, is_set in (
                    ("replicas", self.replicas > 0),
                    ("failover", self.failover is not None),
                    ("resources", self.resources is not None),
                    ("maxmemory", self.maxmemory is not None),
                    ("persistence", self.persistence.mode != "none"),
                )
                if is_set
            ]
            if deployed_only:
                raise ValueError(f"{deployed_only} describe a cache deployed here; an 'external' cache is run by its provider, remove them")
            return self
        if self.resources is None:
            raise ValueError("'resources' (requests and limits): maxmemory is derived from the memory limit")
        if self.failover is not None and self.replicas < 1:
            raise ValueError("'failover' promotes a replica: set 'replicas' to at least 1 (2 survives a failover with a replica left)")
        if self.failover is None and self.replicas > 0:
            raise ValueError(
                "'replicas' without 'failover': nothing would promote a replica when the primary is lost; "
                "add 'failover: {}' (three Sentinels) or set 'replicas: 0'"
            )
        return self  # maxmemory against the limit: cache_problems (it names the key and the fix)

    @property
    def memory_limit_bytes(self) -> int:
        return quantity_bytes(self.resources.limits.memory)

    @property
    def engine_version(self) -> Optional[str]:
        tag = image_tag(self.image.split("@", 1)[0])
        return tag

    @property
    def data_nodes(self) -> int:
        return 1 + self.replicas


def _dicts(value) -> list[dict]:
    return [item if isinstance(item, dict) else {} for item in value] if isinstance(value, list) else []


def cache_secret_keys(raw_caches) -> dict[str, str]:
    """The secret config keys external caches name (their passwords), with what each is for."""
    needed = {}
    for cache in _dicts(raw_caches):
        external = cache.get("external")
        key = external.get("passwordKey") if isinstance(external, dict) else None
        if isinstance(key, str) and re.fullmatch(CONFIG_KEY, key):
            needed[key] = f"the password of external cache '{cache.get('name')}' (caches[].external.passwordKey)"
    return needed


def cache_problems(raw: dict, project: str, stack: str) -> list[str]:
    """What ties the caches to the rest of the stack, each with the key and a fix: users that are not services, a cache
    nobody uses, a prod cache that cannot fail over, a maxmemory the container's limit cannot hold, clashing names.

    Read from the raw values (like the secret keys) so these are reported with every other problem.
    """
    services = _dicts(raw.get("services"))
    names = sorted({s["name"] for s in services if isinstance(s.get("name"), str)})
    databases = {d["name"] for d in _dicts(raw.get("databases")) if isinstance(d.get("name"), str)}
    prod = raw.get("environment") == "prod"
    problems = []
    for index, cache in enumerate(_dicts(raw.get("caches"))):
        where, name = f"caches[{index}]", cache.get("name")
        used_by = cache.get("usedBy") if isinstance(cache.get("usedBy"), list) else []
        for position, user in enumerate(used_by):
            if isinstance(user, str) and names and user not in names:
                problems.append(
                    f"{project}:{where}.usedBy[{position}]: '{user}' is not a service of this stack; name one of {names}: "
                    f"`pulumi config set --stack {stack} --path '{where}.usedBy[{position}]' {names[0]}`"
                )
        if cache.get("usedBy", []) == []:
            problems.append(
                f"{project}:{where}.usedBy: cache '{name}' is used by no service, so nothing may connect to it; name its "
                f"services (`pulumi config set --stack {stack} --path '{where}.usedBy[0]' <service>`) or remove the cache"
            )
        external = isinstance(cache.get("external"), dict)
        if prod and not external and not isinstance(cache.get("failover"), dict):
            problems.append(
                f"{project}:{where}.failover: prod cache '{name}' has no failover, so losing its node loses the cache; "
                f"run replicas and Sentinels: `pulumi config set --stack {stack} --path '{where}.replicas' 2` and "
                f"`pulumi config set --stack {stack} --path '{where}.failover.sentinels' 3`"
            )
        problems += _maxmemory_problems(cache, where, project, stack)
        problems += _limit_range_problems(cache, where, raw, project, stack)
        problems += _env_problems(cache, where, raw, project)
        if isinstance(name, str) and (name in names or name in databases or f"{name}-sentinel" in names):
            problems.append(
                f"{project}:{where}.name: '{name}' is also the name of a service or database of this stack; their objects "
                f"would collide, rename the cache (`pulumi config set --stack {stack} --path '{where}.name' {name}-cache`)"
            )
    return problems + _trigger_problems(raw, project, stack)


def _trigger_problems(raw: dict, project: str, stack: str) -> list[str]:
    """A redis trigger (services[].autoscaling.keda.triggers[]) reads a cache its service uses: else KEDA has no
    password to read it with, and the cache's NetworkPolicy no reason to admit it."""
    users = {c["name"]: c.get("usedBy") for c in _dicts(raw.get("caches")) if isinstance(c.get("name"), str)}
    problems = []
    for i, service in enumerate(_dicts(raw.get("services"))):
        autoscaling = service.get("autoscaling") if isinstance(service.get("autoscaling"), dict) else {}
        keda = autoscaling.get("keda") if isinstance(autoscaling.get("keda"), dict) else {}
        for j, trigger in enumerate(_dicts(keda.get("triggers"))):
            cache, name = trigger.get("cache"), service.get("name")
            if trigger.get("type") != "redis" or not isinstance(cache, str):
                continue
            if isinstance(users.get(cache), list) and name in users[cache]:
                continue
            known = sorted(c for c, used_by in users.items() if isinstance(used_by, list) and name in used_by)
            fix = ""
            if cache in users:
                index = list(users).index(cache)
                fix = f": `pulumi config set --stack {stack} --path 'caches[{index}].usedBy[{len(users[cache] or [])}]' {name}`"
            problems.append(
                f"{project}:services[{i}].autoscaling.keda.triggers[{j}].cache: '{cache}' is not a cache '{name}' uses (its "
                f"usedBy), so KEDA has no password to read it with; use one of {known or 'none'}, or add '{name}' to that "
                f"cache's usedBy{fix}"
            )
    return problems


def _env_problems(cache: dict, where: str, raw: dict, project: str) -> list[str]:
    """The env a cache gives its users must not be what they already get: their own settings, a database's or another
    cache's (one envPrefix per backing service)."""
    prefix = cache.get("envPrefix", "REDIS")
    if not isinstance(prefix, str):
        return []
    injected = {f"{prefix}_{suffix}" for suffix in CACHE_ENV_SUFFIXES}
    problems = []
    for user in cache.get("usedBy") if isinstance(cache.get("usedBy"), list) else []:
        service = next((s for s in _dicts(raw.get("services")) if s.get("name") == user), None)
        if service is None:
            continue
        own = {key for field in ("env", "secretEnv") if isinstance(service.get(field), dict) for key in service[field]}
        for other in _dicts(raw.get("databases")) + [c for c in _dicts(raw.get("caches")) if c is not cache]:
            used_by = other.get("usedBy") if isinstance(other.get("usedBy"), list) else []
            if user in used_by:
                suffixes = CACHE_ENV_SUFFIXES if other in _dicts(raw.get("caches")) else DATABASE_ENV_SUFFIXES
                default = "REDIS" if suffixes is CACHE_ENV_SUFFIXES else "DATABASE"
                own |= {f"{other.get('envPrefix', default)}_{suffix}" for suffix in suffixes}
        clash = sorted(injected & own)
        if clash:
            problems.append(
                f"{project}:{where}.envPrefix: cache '{cache.get('name')}' gives service '{user}' {clash}, which it already "
                "gets from its own env/secretEnv or another database or cache; give the cache its own 'envPrefix' "
                "(e.g. SESSIONS_REDIS)"
            )
    return problems


def _limit_range_problems(cache: dict, where: str, raw: dict, project: str, stack: str) -> list[str]:
    """The namespace's LimitRange (containerDefaults.max) refuses a cache container beyond it, as any other."""
    defaults = raw.get("containerDefaults") if isinstance(raw.get("containerDefaults"), dict) else {}
    maximum = defaults.get("max") if isinstance(defaults.get("max"), dict) else {}
    resources = cache.get("resources") if isinstance(cache.get("resources"), dict) else {}
    limits = resources.get("limits") if isinstance(resources.get("limits"), dict) else {}
    problems = []
    for resource in ("cpu", "memory"):
        limit, most = limits.get(resource), maximum.get(resource)
        if not (isinstance(limit, str) and isinstance(most, str) and re.fullmatch(QUANTITY, limit) and re.fullmatch(QUANTITY, most)):
            continue
        if quantity(limit) > quantity(most):
            problems.append(
                f"{project}:{where}.resources.limits.{resource}: {limit} is beyond the namespace's LimitRange maximum "
                f"{most} (containerDefaults.max.{resource}), which refuses the cache's pods. Lower it "
                f"(`pulumi config set --stack {stack} --path '{where}.resources.limits.{resource}' {most}`) or raise "
                "containerDefaults.max"
            )
    return problems


def _maxmemory_problems(cache: dict, where: str, project: str, stack: str) -> list[str]:
    maxmemory = cache.get("maxmemory")
    resources = cache.get("resources") if isinstance(cache.get("resources"), dict) else {}
    limits = resources.get("limits") if isinstance(resources.get("limits"), dict) else {}
    limit = limits.get("memory")
    if not (isinstance(maxmemory, str) and isinstance(limit, str) and re.fullmatch(QUANTITY, maxmemory) and re.fullmatch(QUANTITY, limit)):
        return []  # unset, or a bad quantity pydantic reports
    if quantity_bytes(maxmemory) < quantity_bytes(limit):
        return []
    return [
        f"{project}:{where}.maxmemory: {maxmemory} is not below the container's memory limit {limit}; the container would "
        "be OOM-killed before Valkey evicts a key. Remove it to derive it from the limit with headroom "
        f"(`pulumi config rm --stack {stack} --path '{where}.maxmemory'`) or set one below the limit"
    ]
