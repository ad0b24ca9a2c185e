"""Stack configuration: read once from Pulumi config, validated by pydantic, handed to the components.

Each component's own keys live beside it (components/<component>_config.py); this module composes them into
the whole stack, checks what ties them together (a route to an unknown service, a database used by nobody),
and turns every problem into one error.

`load(stack, project, read_value, is_secret)` returns a `StackConfig` or raises `ConfigError` with every
problem at once, each naming the stack file, the key path and the fix. Nothing here touches resources,
so a bad stack file stops the program before anything is registered.
"""

from __future__ import annotations

import difflib
import json
import re
from enum import Enum
from typing import Any, Callable, Iterable, Optional

from pydantic import Field, ValidationError, field_validator, model_validator

from components.addons_config import AddonsConfig
from components.app_service_config import ServiceConfig, calls_problems, egress_problems, kinds_by_name
from components.autoscaling_config import KedaSettings, scaling_problems
from components.backup_bucket_config import BackupsConfig
from components.cache_config import DEFAULT_EXPORTER_IMAGE, DEFAULT_VALKEY_IMAGE, CacheConfig, cache_problems, cache_secret_keys
from components.capacity_config import capacity_problems
from components.config_base import (
    CONFIG_KEY,
    DIGEST,
    DNS_LABEL,
    PATTERN_WORDS,
    MISPLACED_KEY,
    CamelModel,
    image_tag,
    rfc3339_from_go_time,
    whole_number_problems,
)
from components.database_cluster_config import (
    DATABASE_ENV_SUFFIXES,
    DEFAULT_PGBOUNCER_IMAGE,
    DEFAULT_POSTGRES_IMAGE,
    CnpgSettings,
    DatabaseConfig,
    postgres_parameter_problems,
)
from components.ingress_config import ACME_PRODUCTION_EXAMPLE, IngressConfig
from components.monitoring_config import MonitoringConfig, alerting_secret_keys
from components.namespace_baseline_config import ContainerDefaults, NamespaceQuota, PodSecurity
from components.object_names import HASH, claims, collisions
from components.team_access_config import AccessGrants

# The policy pack's own detectors (no Pulumi imports): a plain value the pack would call a secret is refused here.
from policies.secret_detectors import is_secret_name, judge_text, secret_shape


# Top-level keys of the `platform:` namespace, in the order the docs list them.
TOP_LEVEL_KEYS = (
    "environment", "kubernetes", "namespace", "imageRegistry", "quota", "containerDefaults", "services",
    "databases", "backups", "cnpg",  # CloudNativePG databases and their backups
    "caches",  # Valkey caches deployed here, or external ones, for the services
    "ingress", "monitoring", "addons",  # the way in, monitoring, local cluster add-ons
    "podSecurity",  # the namespace's Pod Security Admission version
    "access",  # who may do what in the namespace (RBAC)
    "keda",  # where the cluster's KEDA runs (services[].autoscaling.keda)
)  # fmt: skip


class Environment(str, Enum):
    LOCAL = "local"
    STAGING = "staging"
    PROD = "prod"


# The smallest replica count each environment accepts: prod survives a node and a zone loss.
MIN_REPLICAS = {Environment.LOCAL: 1, Environment.STAGING: 2, Environment.PROD: 3}


class KubernetesTarget(CamelModel):
    """Which cluster: a kubeconfig context on this machine, or a kubeconfig held in secret config.

    With `renderDirectory` the kubernetes provider writes every object as YAML into that folder instead of
    applying it (for GitOps repositories, or a preview with no cluster); a cluster is then optional.
    """

    context: Optional[str] = None
    kubeconfig_secret_key: Optional[str] = Field(default=None, pattern=CONFIG_KEY)
    render_directory: Optional[str] = Field(default=None, min_length=1)
    # pulumi-kubernetes writes Secret values into the rendered files in plaintext: the user must say they know.
    render_secrets_in_plaintext: bool = False

    @model_validator(mode="after")
    def one_source(self) -> "KubernetesTarget":
        sources = (self.context is not None) + (self.kubeconfig_secret_key is not None)
        if sources > 1 or (sources == 0 and self.render_directory is None):
            raise ValueError(
                "set exactly one of 'context' (a kubeconfig context, e.g. kind-platform) or "
                "'kubeconfigSecretKey' (the name of a secret config key holding a kubeconfig)"
                + ("" if sources else ", or 'renderDirectory' to write YAML instead of applying it")
            )
        if self.render_directory is not None and not self.render_secrets_in_plaintext:
            raise ValueError(
                "with 'renderDirectory', pulumi-kubernetes writes the stack's Secrets into the folder in plaintext; "
                "keep that folder out of git (or encrypt it, e.g. SOPS) and set 'renderSecretsInPlaintext: true' "
                "to say so"
            )
        return self


class StackConfig(CamelModel):
    environment: Environment
    kubernetes: KubernetesTarget
    namespace: str = Field(pattern=DNS_LABEL, max_length=63)
    image_registry: str = Field(min_length=1)
    quota: NamespaceQuota
    container_defaults: ContainerDefaults
    services: list[ServiceConfig] = Field(min_length=1)
    databases: list[DatabaseConfig] = Field(default_factory=list)
    backups: Optional[BackupsConfig] = None  # None: no backups (an error in prod, see _data_safety_problems)
    caches: list[CacheConfig] = Field(default_factory=list)  # cross-checked in components.cache_config.cache_problems
    cnpg: CnpgSettings = CnpgSettings()
    ingress: Optional[IngressConfig] = None  # None: nothing public
    monitoring: MonitoringConfig = MonitoringConfig()
    addons: AddonsConfig = AddonsConfig()
    pod_security: Optional[PodSecurity] = None
    access: AccessGrants = Field(default_factory=list)  # empty: no Roles, only the cluster's own RBAC
    keda: KedaSettings = KedaSettings()

    @field_validator("namespace")
    @classmethod
    def not_a_system_namespace(cls, namespace: str) -> str:
        if namespace == "default" or namespace.startswith("kube-"):
            raise ValueError(f"'{namespace}' is shared with the cluster; choose a namespace of the platform's own")
        return namespace

    @field_validator("image_registry")
    @classmethod
    def registry_without_trailing_slash(cls, registry: str) -> str:
        return registry.rstrip("/")

    @model_validator(mode="after")
    def services_fit_the_environment(self) -> "StackConfig":
        problems = []
        names = [service.name for service in self.services]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"services: service names must be unique; {duplicates} appear more than once")
        minimum = MIN_REPLICAS[self.environment]
        for index, service in enumerate(self.services):
            unknown = sorted(set(service.calls) - set(names))
            if unknown:
                problems.append(f"services[{index}].calls: service '{service.name}' calls {unknown}, which no service in this stack is named")
            if not service.is_web:
                continue  # the replica minimums keep requests served; a worker's backlog waits, a cron job has none
            if service.min_replicas < minimum:
                field = "autoscaling.minReplicas" if service.autoscaling else "replicas"
                problems.append(
                    f"services[{index}].{field}: service '{service.name}' runs {service.min_replicas} replica(s); {self.environment.value} "
                    f"needs at least {minimum} (raise 'replicas' or 'autoscaling.minReplicas')"
                )
            if self.environment is Environment.PROD and service.autoscaling is None:
                problems.append(f"services[{index}].autoscaling: service '{service.name}' needs 'autoscaling' in prod (minReplicas >= 3)")
        if problems:
            raise ValueError(PROBLEM_SEPARATOR.join(problems))
        return self

    @model_validator(mode="after")
    def databases_fit_the_services(self) -> "StackConfig":
        problems = []
        names = [database.name for database in self.databases]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"databases: database names must be unique; {duplicates} appear more than once")
        services = {service.name for service in self.services}
        for index, database in enumerate(self.databases):
            where = f"databases[{index}]"
            unknown = sorted(set(database.used_by) - services)
            if unknown:
                problems.append(f"{where}.usedBy: database '{database.name}' is used by {unknown}, which no service in this stack is named")
            problems += self._restore_problems(where, database)
            if database.pooler and database.pooler.instances < MIN_REPLICAS[self.environment]:
                problems.append(
                    f"{where}.pooler.instances: the pooler of '{database.name}' runs {database.pooler.instances} instance(s) "
                    f"and every connection goes through it; {self.environment.value} needs at least "
                    f"{MIN_REPLICAS[self.environment]}"
                )
        for index, service in enumerate(self.services):
            used = self.databases_used_by(service.name)
            prefixes = [database.env_prefix for database in used]
            clashing = sorted({prefix for prefix in prefixes if prefixes.count(prefix) > 1})
            if clashing:
                problems.append(
                    f"services[{index}]: service '{service.name}' uses databases {[d.name for d in used]} with the same envPrefix {clashing}; "
                    "give each database its own 'envPrefix' (e.g. ORDERS_DATABASE)"
                )
            injected = {f"{database.env_prefix}_{suffix}" for database in used for suffix in DATABASE_ENV_SUFFIXES}
            overlap = sorted(injected & (set(service.env) | set(service.secret_env)))
            if overlap:
                problems.append(f"services[{index}].env: service '{service.name}' sets {overlap} itself, but they come from its database; remove them from 'env'/'secretEnv'")
        if self.databases and not self.cnpg.api_server_cidrs:
            problems.append(
                "cnpg.apiServerCidrs: database pods must reach the Kubernetes API server (CloudNativePG's instance manager "
                "talks to it) and the namespace denies egress by default; set the API server's addresses, e.g. "
                "`kubectl get endpoints kubernetes -n default` and the 'kubernetes' Service IP, as CIDRs"
            )
        if problems:
            raise ValueError(PROBLEM_SEPARATOR.join(problems))
        return self

    def _restore_problems(self, where: str, database: DatabaseConfig) -> list[str]:
        """A restore needs backups to read: a backed-up database of this stack, or a bucket the stack can read."""
        if database.restore is None:
            return []
        source = database.restore.source
        if self.backups is None:
            return [
                f"{where}.restore: restoring '{database.name}' reads backups through the stack's 'backups' settings "
                "(bucket, credentials, endpoint); add 'backups' to the stack file (README, 'Databases')"
            ]
        if not isinstance(source, str):
            return []
        by_name = {other.name: other for other in self.databases}
        if source == database.name:
            return [
                f"{where}.restore.source: '{database.name}' cannot be restored onto itself: CloudNativePG refuses to archive "
                f"into a non-empty archive, and the running cluster ignores a new bootstrap. Give the restored database a "
                f"new name (e.g. '{database.name}-restored') and keep 'restore.source: {source}'"
            ]
        if source not in by_name:
            return [
                f"{where}.restore.source: '{source}' is not a database of this stack ({sorted(by_name) or 'none'}); for "
                "backups written elsewhere give {bucket, path, serverName}"
            ]
        chain, current = [database.name], source
        while current in by_name and current not in chain:  # follow the sources until one is not restored here
            chain.append(current)
            current = by_name[current].restores_from
        if current == database.name:
            return [f"{where}.restore.source: the restores form a cycle ({' <- '.join(chain + [current])}); one of them must start empty or from elsewhere"]
        if not self.backs_up(by_name[source]):
            return [
                f"{where}.restore.source: database '{source}' has no backups to restore from (its 'backup.enabled' is "
                "false); enable its backups and wait for the first base backup, or restore from another source"
            ]
        return []

    def databases_used_by(self, service_name: str) -> list[DatabaseConfig]:
        return [database for database in self.databases if service_name in database.used_by]

    def caches_used_by(self, service_name: str) -> list[CacheConfig]:
        return [cache for cache in self.caches if service_name in cache.used_by]

    def backs_up(self, database: DatabaseConfig) -> bool:
        """A database is backed up when the stack has a bucket and the database does not opt out."""
        return self.backups is not None and database.backup.enabled

    def pulled(self, image: str) -> str:
        """An image as pulled: from its own registry if it names one, else from the stack's registry."""
        first_segment = image.split("/", 1)[0]
        names_a_registry = "/" in image and ("." in first_segment or ":" in first_segment or first_segment == "localhost")
        return image if names_a_registry else f"{self.image_registry}/{image}"


class ConfigError(Exception):
    """Every problem of one stack's config, each with where it is and how to fix it."""

    def __init__(self, stack_file: str, problems: list[str]):
        self.stack_file = stack_file
        self.problems = problems
        lines = [f"{stack_file} has {len(problems)} configuration problem(s):"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_segment(part: Any, first: bool = False) -> str:
    """One step of a key path in `pulumi config set --path` syntax: .name, [0], or ["odd key"] (dots, spaces, ...)."""
    if isinstance(part, int):
        return f"[{part}]"
    if _PLAIN_KEY.fullmatch(str(part)):
        return str(part) if first else f".{part}"
    return f"[{json.dumps(str(part))}]"


def _key_path(location: tuple[Any, ...]) -> str:
    return "".join(_key_segment(part, first=index == 0) for index, part in enumerate(location))


# A model validator that finds several problems raises them one per line, each starting with its key path.
PROBLEM_SEPARATOR = "\n"
_LEADING_PATH = re.compile(r"([A-Za-z][A-Za-z0-9_]*(?:\[\d+\]|\.[A-Za-z_][A-Za-z0-9_-]*)*): (.+)", re.DOTALL)


def _describe_all(error: dict[str, Any], project: str, stack: str) -> list[str]:
    """The problems of one pydantic error: the stack config's own validators raise theirs one per line, each
    starting with its key path, so none is reported at `<config>` and each counts once."""
    if error["type"] != "value_error" or error["loc"]:
        return [_describe(error, project, stack)]
    described = []
    for part in error["msg"].removeprefix("Value error, ").split(PROBLEM_SEPARATOR):
        match = _LEADING_PATH.fullmatch(part)
        if match is None:
            described.append(_describe({**error, "msg": part}, project, stack))
            continue
        where = tuple(
            int(step[1:-1]) if step.startswith("[") else step.lstrip(".") for step in re.findall(r"\[\d+\]|\.?[A-Za-z_][A-Za-z0-9_-]*", match[1])
        )
        described.append(f"{project}:{_key_path(where)}: {match[2]}")
    return described


def _shortened(value: Any, limit: int = 60) -> str:
    """A value as a message shows it: whole when short, else its start (a pasted certificate is no help there)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1] if isinstance(value, str) else ''}"


def _describe(error: dict[str, Any], project: str, stack: str) -> str:
    path = _key_path(error["loc"])
    where = f"{project}:{path}" if path else f"{project}:<config>"
    path_flag = " --path" if ("." in path or "[" in path) else ""
    if error["type"] == "missing":
        reason = "" if error["msg"] == "Field required" else f" ({error['msg']})"
        return f"{where}: missing{reason}. Set it with `pulumi config set --stack {stack}{path_flag} '{path}' <value>`"
    if error["type"] == MISPLACED_KEY:
        return f"{where}: {error['msg']}. Fix: `pulumi config rm --stack {stack}{path_flag} '{path}'`"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; remove it or fix its spelling (README, 'Stack config', lists the keys)"
    value = error.get("input")
    name = next((part for part in reversed(error["loc"]) if isinstance(part, str)), "")
    if isinstance(value, (dict, list)):
        shown = ""
    elif (isinstance(value, str) and secret_shape(value)) or (is_secret_name(name) and value not in (None, "")):
        shown = " (the value is not shown: it looks like a secret)"  # config errors end up in CI logs
    else:
        shown = f" (got {_shortened(value)})"
    if error["type"] == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(error["ctx"]["pattern"], "the form this setting takes (README, 'Stack config')")
        return f"{where}: not {words}{shown}"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}{shown}"


def secret_keys_in(raw: dict[str, Any]) -> dict[str, str]:
    """The secret config keys named by the (possibly invalid) raw config, with what each is for.

    Read from the raw values rather than the model so that secret problems are reported together with
    every other problem, even when the rest of the config does not validate.
    """
    needed: dict[str, str] = {}
    kubernetes = raw.get("kubernetes")
    kubeconfig_key = kubernetes.get("kubeconfigSecretKey") if isinstance(kubernetes, dict) else None
    if isinstance(kubeconfig_key, str) and re.fullmatch(CONFIG_KEY, kubeconfig_key):  # else pydantic reports the name
        needed[kubeconfig_key] = "the kubeconfig of the target cluster"
    services = raw.get("services")
    for service in services if isinstance(services, list) else []:
        secret_env = service.get("secretEnv") if isinstance(service, dict) else None
        for env_name, key in secret_env.items() if isinstance(secret_env, dict) else []:
            if isinstance(key, str) and re.fullmatch(CONFIG_KEY, key):
                needed[key] = f"secret env {env_name} of service '{service.get('name')}'"
    backups = raw.get("backups")
    credentials = backups.get("credentials") if isinstance(backups, dict) else None
    for field, purpose in (("accessKeyIdKey", "access key id"), ("secretAccessKeyKey", "secret access key")):
        key = credentials.get(field) if isinstance(credentials, dict) else None
        if isinstance(key, str) and re.fullmatch(CONFIG_KEY, key):
            needed[key] = f"the {purpose} of the database backup bucket (backups.credentials.{field})"
    needed.update(alerting_secret_keys(raw.get("monitoring")))
    needed.update(cache_secret_keys(raw.get("caches")))
    return needed


def _data_safety_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """Databases the environment would not survive losing: too few instances, no backups.

    Read from the raw values (like the secret keys) so these are reported with every other problem.
    """
    environment = raw.get("environment")
    if not isinstance(environment, str) or environment not in {env.value for env in Environment}:
        return []  # a list or mapping is unhashable; pydantic reports the bad value
    minimum = MIN_REPLICAS[Environment(environment)]
    databases = raw.get("databases")
    databases = [d for d in databases if isinstance(d, dict)] if isinstance(databases, list) else []
    problems = []
    for index, database in enumerate(databases):
        name, instances = database.get("name"), database.get("instances", 1)
        if isinstance(instances, int) and not isinstance(instances, bool) and instances < minimum:
            problems.append(
                f"{project}:databases[{index}].instances: database '{name}' runs {instances} instance(s); {environment} "
                f"needs at least {minimum} so a failover keeps a replica. "
                f"Fix: `pulumi config set --stack {stack} --path 'databases[{index}].instances' {minimum}`"
            )
        backup = database.get("backup")
        if environment == Environment.PROD.value and isinstance(backup, dict) and backup.get("enabled") is False:
            problems.append(
                f"{project}:databases[{index}].backup.enabled: database '{name}' is not backed up; prod databases "
                "must be. Remove 'enabled: false' (backups then go to the stack's 'backups' bucket)"
            )
    if environment == Environment.PROD.value and databases and not isinstance(raw.get("backups"), dict):
        problems.append(
            f"{project}:backups: missing; prod databases must be backed up. Add 'backups' (bucket, region, "
            "retentionDays, credentials) to the stack file: README, 'Databases'"
        )
    return problems


def _prod_image_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """Prod pins images by digest: the pack's workload-image-pinned requires it there (policies/config/prod.json,
    requireDigest), so a tag that loads elsewhere is refused here rather than by the pack after registration. That
    holds for services' images and for the databases' PostgreSQL and PgBouncer images (set or default).

    Read from the raw values (like the secret keys) so these are reported with every other problem; images without
    a tag or with `latest` are reported by the model already.
    """
    if raw.get("environment") != Environment.PROD.value:
        return []
    images = []  # (key path, image, what the digest is appended to)
    for index, service in enumerate(raw.get("services") if isinstance(raw.get("services"), list) else []):
        service = service if isinstance(service, dict) else {}
        migrations = service.get("migrations") if isinstance(service.get("migrations"), dict) else {}
        tasks = [task if isinstance(task, dict) else {} for task in service.get("tasks")] if isinstance(service.get("tasks"), list) else []
        tasks_images = [(f"services[{index}].tasks[{j}].image", task.get("image")) for j, task in enumerate(tasks)]
        for path, image in ((f"services[{index}].image", service.get("image")), (f"services[{index}].migrations.image", migrations.get("image")), *tasks_images):
            if isinstance(image, str) and image_tag(image) not in (None, "latest"):
                images.append((path, image, image.rsplit(":", 1)[0]))
    for index, database in enumerate(raw.get("databases") if isinstance(raw.get("databases"), list) else []):
        database = database if isinstance(database, dict) else {}
        pooler = database.get("pooler") if isinstance(database.get("pooler"), dict) else None
        # Unset, both are the operator's defaults pinned by tag: prod names them with a digest too.
        image = database.get("imageName", DEFAULT_POSTGRES_IMAGE)
        if isinstance(image, str) and image_tag(image.split("@", 1)[0]):
            images.append((f"databases[{index}].imageName", image, image))  # the tag carries the major version: kept
        image = pooler.get("image", DEFAULT_PGBOUNCER_IMAGE) if pooler is not None else None
        if isinstance(image, str) and image_tag(image) not in (None, "latest"):
            images.append((f"databases[{index}].pooler.image", image, image))
    for index, cache in enumerate(raw.get("caches") if isinstance(raw.get("caches"), list) else []):
        cache = cache if isinstance(cache, dict) and not isinstance(cache.get("external"), dict) else {}
        for key, default in (("image", DEFAULT_VALKEY_IMAGE), ("exporterImage", DEFAULT_EXPORTER_IMAGE)):
            image = cache.get(key, default) if cache else None
            if isinstance(image, str) and image_tag(image) not in (None, "latest"):
                images.append((f"caches[{index}].{key}", image, image))
    problems = []
    for path, image, pinned in images:
        if DIGEST.search(image):
            continue
        if "@" in image:  # a digest, but not sha256 with 64 hex digits: no tag to drop, the digest to correct
            named = image.split("@", 1)[0]
            problems.append(
                f"{project}:{path}: '{image}' has a malformed digest; prod pins images by a sha256 digest of 64 hex "
                f"digits. Fix: `pulumi config set --stack {stack} --path '{path}' '{named}@sha256:<digest>'` (the digest: "
                f"`docker buildx imagetools inspect {named}`)"
            )
            continue
        problems.append(
            f"{project}:{path}: '{image}' is pinned by tag; prod pins images by digest (the policy pack requires it "
            f"there). Fix: `pulumi config set --stack {stack} --path '{path}' '{pinned}@sha256:<digest>'` (the digest: "
            f"`docker buildx imagetools inspect {image}`)"
        )
    return problems


def _secret_problems(needed: dict[str, str], project: str, stack: str, read_value, is_secret) -> list[str]:
    problems = []
    for key, purpose in needed.items():
        fix = f"pulumi config set --secret --stack {stack} {key} <value>"
        if read_value(key) is None:
            problems.append(f"{project}:{key}: missing ({purpose}). Set it encrypted: `{fix}`")
        elif not is_secret(key):
            problems.append(
                f"{project}:{key}: stored in plaintext in Pulumi.{stack}.yaml, but it is {purpose}. "
                f"Remove it from the file and set it encrypted: `{fix}`"
            )
    return problems


def _unknown_key_problems(
    config_keys: Iterable[str], secret_keys: dict[str, str], project: str, stack: str, is_secret, orphans: bool
) -> list[str]:
    """Keys of this project that no setting reads: a typo (`monitorng`) would otherwise drop what it configures
    without a word. Other namespaces (`kubernetes:`, `aws:`) belong to providers and are left alone."""
    known = [*TOP_LEVEL_KEYS, *secret_keys]
    problems = []
    for full_key in sorted(set(config_keys)):
        namespace, _, key = full_key.partition(":")
        if namespace != project or key in known:
            continue
        remove = f"`pulumi config rm --stack {stack} {key}`"
        if is_secret(key):
            if not orphans:
                continue
            problems.append(
                f"{full_key}: an encrypted value that no setting uses (secret keys are named by services[].secretEnv, "
                f"kubernetes.kubeconfigSecretKey, backups.credentials, monitoring.alerting and caches). Name it where it "
                f"is meant, or remove it: {remove}"
            )
            continue
        guess = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.6)
        hint = f"did you mean '{project}:{guess[0]}'? Rename it, or remove it" if guess else "remove it"
        # A key that is no path (`a b`, `:`) is named in the message, at the config as a whole.
        where = full_key if _PLAIN_KEY.fullmatch(key) else f"{project}:<config>: the key {key!r}"
        problems.append(
            f"{where}: unknown key, so the platform would ignore it; {hint}: {remove} (README, 'Stack config', "
            "lists the keys)"
        )
    return problems


def _suggested_secret_key(service_name: Any, env_name: str) -> str:
    """A config key for a secret env value, in the stack files' style: web + SESSION_KEY -> web-session-key."""
    prefix = service_name if isinstance(service_name, str) and re.fullmatch(DNS_LABEL, service_name) else "service"
    suffix = re.sub(r"[^a-z0-9]+", "-", env_name.lower()).strip("-") or "secret"
    return f"{prefix}-{suffix}"


def _env_path(index: int, env_name: str) -> str:
    return _key_path(("services", index, "env", env_name))


def _string_leaves(value: Any, location: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """(location, text) of every string in a raw config value, mapping keys not included."""
    if isinstance(value, str):
        return [(location, value)]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _string_leaves(item, location + (key,))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _string_leaves(item, location + (index,))]
    return []


def _object_name_problems(raw: dict[str, Any], project: str) -> list[str]:
    """Entries that would make one Kubernetes object twice (components/object_names.py: what each entry makes)."""
    shared: dict[tuple, list[str]] = {}
    for owner, kind, name, other in collisions(claims(raw)):
        shared.setdefault((owner, other), []).append(f"{kind} '{name.replace(HASH, '<hash>')}'")
    problems = []
    for (owner, other), objects in shared.items():
        by = f"{_key_path(other)} ('{raw[other[0]][other[1]]['name']}') makes" if other else "the namespace makes for itself"
        problems.append(
            f"{project}:{_key_path(owner)}.name: '{raw[owner[0]][owner[1]]['name']}' would make {', '.join(objects)}, "
            f"which {by} too: two resources cannot be one object (`pulumi up` fails with 'already exists'). Rename one"
        )
    return problems


def _unquoted_time_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """Text that YAML turned into a time: the CLI passes it in Go's format ('2026-11-30 00:00:00 +0000 UTC'), not as
    written. Only a restore's targetTime is a time (it takes that format); anywhere else the value must be quoted."""
    problems = []
    for location, text in _string_leaves(raw, ()):
        written = rfc3339_from_go_time(text)
        if written is None or location[-1] == "targetTime":
            continue
        if written.endswith("T00:00:00Z"):
            written = written[: -len("T00:00:00Z")]
        path = _key_path(location)
        path_flag = " --path" if ("." in path or "[" in path) else ""
        problems.append(
            f"{project}:{path}: an unquoted date or time, which YAML reads as a time: the program would get "
            f"'{text}'. Quote it in Pulumi.{stack}.yaml ('{written}'), or set it as text: "
            f"`pulumi config set --stack {stack}{path_flag} '{path}' '{written}'`"
        )
    return problems


def _plaintext_secret_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """Plain config values the policy pack would call secrets, with the same detectors (policies/secret_detectors.py).

    A service's `env` goes to its ConfigMap and is judged like ConfigMap data: by name, by shape, and each line
    of a multi-line value. Every other string of the config is judged by shape, as the pack judges labels and
    annotations (monitoring.selectorLabels, ingress.annotations and backups.credentials.roleArn become some): a
    credential has no place in plain config anyway (a URL with user:password as backups.endpoint). The value
    itself is never repeated (config errors end up in CI logs). Read from the raw values (like the secret keys)
    so these are reported with every other problem.
    """
    problems = []
    services = raw.get("services")
    for index, service in enumerate(services if isinstance(services, list) else []):
        env = service.get("env") if isinstance(service, dict) else None
        for env_name, value in env.items() if isinstance(env, dict) else []:
            reason = judge_text(env_name, value) if isinstance(value, str) else None
            if reason:
                key = _suggested_secret_key(service.get("name"), env_name)
                problems.append(
                    f"{project}:{_env_path(index, env_name)}: {reason}; a plain 'env' value is stored in plaintext in "
                    f"Pulumi.{stack}.yaml and in the service's ConfigMap. Set it encrypted: "
                    f"`pulumi config set --secret --stack {stack} {key} <value>`, then move {env_name} from 'env' to "
                    f"'secretEnv' ({env_name}: {key}), which mounts it from a Secret"
                )
    for location, text in _string_leaves(raw, ()):
        if location[:1] == ("services",) and location[2:3] == ("env",):
            continue  # judged above, by name as well
        shape = secret_shape(text)
        if shape:
            where = (
                "it becomes a label or annotation, which anyone who can list the object reads"
                if location[-2:-1] in (("selectorLabels",), ("annotations",)) or location[-1:] in (("roleArn",), ("awsRoleArn",))
                else f"plain config is stored in plaintext in Pulumi.{stack}.yaml"
            )
            # Never "make it a secret": the platform reads this setting as plain config only. A credential has keys
            # of its own where the platform needs one.
            problems.append(
                f"{project}:{_key_path(location)}: looks like {shape}; {where}. Take the credential out of this "
                "setting: the platform reads it as plain config only. Credentials go where the platform asks for them "
                "(backups.credentials, monitoring.alerting receivers, a cache's passwordKey, a service's secretEnv), "
                f"each set with `pulumi config set --secret --stack {stack} <key> <value>`"
            )
    return problems


def _edge_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """What ties the way in and the add-ons to the rest of the stack: routes to unknown services, certificates
    browsers would not trust in prod, add-ons outside the local stack.

    Read from the raw values (like the secret keys) so these are reported with every other problem.
    """
    problems = []
    environment = raw.get("environment")
    services = raw.get("services")
    names = sorted({s.get("name") for s in services if isinstance(s, dict) and isinstance(s.get("name"), str)}) if isinstance(services, list) else []
    ingress = raw.get("ingress") if isinstance(raw.get("ingress"), dict) else {}
    hosts = ingress.get("hosts") if isinstance(ingress.get("hosts"), list) else []
    for i, host in enumerate(hosts):
        routes = host.get("routes") if isinstance(host, dict) and isinstance(host.get("routes"), list) else []
        for j, route in enumerate(routes):
            service = route.get("service") if isinstance(route, dict) else None
            if isinstance(service, str) and names and service not in names:
                problems.append(
                    f"{project}:ingress.hosts[{i}].routes[{j}].service: '{service}' is not a service of this stack; "
                    f"route to one of {names}"
                )
            elif isinstance(service, str) and kinds_by_name(raw).get(service, "web") != "web":
                problems.append(
                    f"{project}:ingress.hosts[{i}].routes[{j}].service: '{service}' is a {kinds_by_name(raw)[service]}, "
                    "which serves no requests (no port, no Service); route to a web service or remove the route"
                )
    issuer = ingress.get("issuer") if isinstance(ingress.get("issuer"), dict) else {}
    if environment == Environment.PROD.value and issuer:
        if issuer.get("kind") == "selfSigned":
            problems.append(
                f"{project}:ingress.issuer.kind: prod serves the public, whose browsers do not trust a local CA; use "
                f"kind: acme with server: {ACME_PRODUCTION_EXAMPLE} and an email, or kind: clusterIssuer with the cluster's "
                "production ClusterIssuer"
            )
        elif issuer.get("kind") == "acme" and "staging" in str(issuer.get("server", "")):
            problems.append(
                f"{project}:ingress.issuer.server: '{issuer.get('server')}' is an ACME staging directory, whose "
                f"certificates browsers do not trust; prod uses a production directory, e.g. {ACME_PRODUCTION_EXAMPLE}"
            )
        elif issuer.get("kind") == "clusterIssuer" and re.search(r"staging|self-?signed", str(issuer.get("name", "")), re.IGNORECASE):
            # We cannot see the ClusterIssuer; its name is the one hint of a CA browsers would not trust.
            problems.append(
                f"{project}:ingress.issuer.name: '{issuer.get('name')}' looks like a staging or self-signed "
                "ClusterIssuer, whose certificates browsers do not trust; prod uses the cluster's production "
                "ClusterIssuer (e.g. 'letsencrypt-prod')"
            )
    addons = raw.get("addons") if isinstance(raw.get("addons"), dict) else {}
    enabled = [key for key, value in addons.items() if value is True]
    if enabled and environment in (Environment.STAGING.value, Environment.PROD.value):
        problems.append(
            f"{project}:addons: {enabled} would install cluster-wide operators from this stack; only the local stack "
            f"installs add-ons, {environment} expects its cluster's owners to have installed them (README, 'Cluster "
            f"add-ons'). Remove 'addons' from Pulumi.{stack}.yaml"
        )
    if addons.get("cnpg") is True and addons.get("certManager") is not True:
        problems.append(
            f"{project}:addons.cnpg: the Barman Cloud plugin installed with CloudNativePG gets its TLS certificates "
            "from cert-manager; set addons.certManager: true as well"
        )
    return problems


def load(
    stack: str,
    project: str,
    read_value: Callable[[str], Optional[str]],
    is_secret: Callable[[str], bool],
    config_keys: Optional[Iterable[str]] = None,
) -> StackConfig:
    """Builds the StackConfig from raw config values; raises ConfigError listing every problem.

    `read_value(key)` returns the raw string of `<project>:<key>` (None when unset), `is_secret(key)` whether
    it was stored with `--secret`. In the program both come from the Pulumi SDK. `config_keys`, every key the stack
    sets (fully qualified), lets a key nothing reads be reported instead of silently ignored.
    """
    problems: list[str] = []
    raw: dict[str, Any] = {}
    for key in TOP_LEVEL_KEYS:
        value = read_value(key)
        if value is None:
            continue
        try:
            raw[key] = json.loads(value) if value[:1] in ("{", "[") else value
        except json.JSONDecodeError as error:
            problems.append(f"{project}:{key}: not valid structured config ({error.msg}); check the YAML under it")
    config = None
    # What pydantic lets through although the API server would not (a boolean read as 1, a count beyond int32): as
    # invalid as what it refuses (said instead of pydantic's words for the same key), so the checks that need a
    # valid config are skipped too.
    numbers = dict(whole_number_problems(StackConfig, raw))
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as errors:
        problems += [
            problem for error in errors.errors() if tuple(error["loc"]) not in numbers for problem in _describe_all(error, project, stack)
        ]
    problems += [f"{project}:{_key_path(where)}: {why}" for where, why in numbers.items()]
    config = None if numbers else config
    named_secrets = secret_keys_in(raw)
    problems += _secret_problems(named_secrets, project, stack, read_value, is_secret)
    problems += _data_safety_problems(raw, project, stack)
    problems += _prod_image_problems(raw, project, stack)
    problems += _edge_problems(raw, project, stack)
    problems += _object_name_problems(raw, project)
    problems += egress_problems(raw, project, stack)
    problems += cache_problems(raw, project, stack)
    problems += calls_problems(raw, project, stack)
    problems += _plaintext_secret_problems(raw, project, stack)
    problems += _unquoted_time_problems(raw, project, stack)
    problems += [f"{project}:{_key_path(where)}: {why}" for where, why in postgres_parameter_problems(raw.get("databases"))]
    # Which encrypted values are orphans is known only when every key that names one is valid.
    problems += _unknown_key_problems(config_keys or (), named_secrets, project, stack, is_secret, config is not None)
    if config is not None:  # what needs the whole validated config: defaults filled in, quantities checked
        problems += scaling_problems(config.services, config.environment.value, config.databases, project, stack)
        problems += capacity_problems(config, project, stack)
    if problems or config is None:
        raise ConfigError(f"Pulumi.{stack}.yaml", problems)
    return config
