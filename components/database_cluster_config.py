"""The `databases[]` and `cnpg` stack config keys: one components.database_cluster.DatabaseCluster per database."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from components.config_base import (
    DNS_LABEL,
    QUANTITY,
    CamelModel,
    ComputeAmounts,
    ContainerResources,
    image_tag,
    pinned_image,
    rfc3339_from_go_time,
)

# The versions the local add-on installs and tools/crds was extracted from (tools/crds/SOURCE.md): the
# Barman Cloud plugin needs CloudNativePG >= 1.26 (>= 1.27 recommended); moving either means re-extracting
# the CRDs and re-running the tests.
CNPG_OPERATOR_VERSION = "1.30.0"
# The Barman Cloud plugin's sidecar in each instance pod of a backed-up database (the ObjectStore's
# instanceSidecarConfiguration): barman-cloud-wal-archive (Python) compresses and uploads WAL segments, two at a time
# (wal.maxParallel), and runs the base backups' uploads. Unsized, it would take the namespace's LimitRange default;
# the quota counts it either way (components/capacity_config.py).
BACKUP_SIDECAR_RESOURCES = ContainerResources(
    requests=ComputeAmounts(cpu="100m", memory="128Mi"), limits=ComputeAmounts(cpu="500m", memory="512Mi")
)
# The images each CloudNativePG version runs when a Cluster or Pooler names none (pkg/versions/versions.go of the
# operator module: DefaultImageName, DefaultPgbouncerImage). Pinned here so that an operator upgrade cannot change the
# PostgreSQL version under a running database: moving CNPG_OPERATOR_VERSION without an entry here fails at import.
OPERATOR_DEFAULT_IMAGES = {
    "1.30.0": {
        "postgres": "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie",
        "pgbouncer": "ghcr.io/cloudnative-pg/pgbouncer:1.25.1",
    },
}
DEFAULT_POSTGRES_IMAGE = OPERATOR_DEFAULT_IMAGES[CNPG_OPERATOR_VERSION]["postgres"]
DEFAULT_PGBOUNCER_IMAGE = OPERATOR_DEFAULT_IMAGES[CNPG_OPERATOR_VERSION]["pgbouncer"]
# PostgreSQL's own default (max_connections), which CloudNativePG keeps unless `parameters` set it.
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
# Connections PostgreSQL keeps for superusers and the operator's own sessions (superuser_reserved_connections
# defaults to 3; CloudNativePG's instance manager and the exporter hold a few more).
RESERVED_CONNECTIONS = 10

PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
# What a service using a database gets, each as <envPrefix>_<suffix> (components.database_cluster fills them in).
DATABASE_ENV_SUFFIXES = ("HOST", "PORT", "NAME", "USER", "PASSWORD", "URL")
# Settings CloudNativePG manages itself and refuses in spec.postgresql.parameters.
CNPG_FIXED_PARAMETERS = frozenset(
    {
        "archive_command", "archive_mode", "cluster_name", "config_file", "data_directory", "full_page_writes",
        "hba_file", "hot_standby", "ident_file", "listen_addresses", "log_destination", "logging_collector",
        "port", "primary_conninfo", "primary_slot_name", "restore_command", "ssl", "ssl_ca_file", "ssl_cert_file",
        "ssl_key_file", "synchronous_standby_names", "unix_socket_directories", "wal_level",
    }
)


class VolumeSettings(CamelModel):
    """A PersistentVolumeClaim per instance: its size, and the storage class (the cluster default if unset)."""

    size: str = Field(pattern=QUANTITY)
    storage_class: Optional[str] = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class DatabaseBackup(CamelModel):
    """Per database: whether it is backed up (to the stack's `backups` bucket) and when base backups run."""

    enabled: bool = True
    # CloudNativePG schedules have six fields, seconds first.
    schedule: str = "0 0 3 * * *"

    @field_validator("schedule")
    @classmethod
    def six_field_cron(cls, schedule: str) -> str:
        if len(schedule.split()) != 6:
            raise ValueError(
                f"schedule '{schedule}' needs six cron fields, seconds first (CloudNativePG's format), "
                "e.g. '0 0 3 * * *' for 03:00 every day"
            )
        return schedule


class ExternalBackupSource(CamelModel):
    """Backups written by a database of another stack (or an older cluster): where its archive is in a bucket.

    Read with the stack's own `backups` credentials and endpoint. Barman keeps a server's archive under
    <bucket>/<path>/<serverName>/; this platform writes <bucket>/<namespace>/<database name>/.
    """

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    path: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")  # the folder above the server's, e.g. 'platform'
    server_name: str = Field(pattern=DNS_LABEL)  # the source cluster's name as barman archived it


class DatabaseRestore(CamelModel):
    """Bootstrap the cluster from backups instead of an empty database (CloudNativePG `bootstrap.recovery`)."""

    # A database of this stack (its name), or the archive of one elsewhere.
    source: Union[str, ExternalBackupSource]
    # Point-in-time recovery: replay WAL up to this instant. Unset: up to the latest archived WAL.
    target_time: Optional[str] = None

    @field_validator("source")
    @classmethod
    def source_name_is_a_database_name(cls, source: Union[str, ExternalBackupSource]) -> Union[str, ExternalBackupSource]:
        if isinstance(source, str) and not re.fullmatch(DNS_LABEL, source):
            raise ValueError(
                f"source '{source}' is not a database name; name a database of this stack, or give "
                "{bucket, path, serverName} for backups elsewhere"
            )
        return source

    @field_validator("target_time")
    @classmethod
    def rfc3339_in_the_past(cls, target_time: Optional[str]) -> Optional[str]:
        if target_time is None:
            return None
        example = "e.g. '2026-11-30T09:15:00Z' or '2026-11-30T10:15:00+01:00'"
        # Unquoted in the stack file, the time arrives in Go's format (with its offset): a time is what is meant.
        target_time = rfc3339_from_go_time(target_time) or target_time
        try:
            instant = datetime.fromisoformat(target_time.replace("z", "Z"))
        except ValueError:
            raise ValueError(f"targetTime '{target_time}' is not an RFC 3339 timestamp; write it as {example}") from None
        if "T" not in target_time.upper() or instant.tzinfo is None:
            raise ValueError(
                f"targetTime '{target_time}' needs a date, a time and a UTC offset ('Z' or '+01:00'), {example}: "
                "without an offset the recovery would stop at a different instant than meant"
            )
        if instant > datetime.now(timezone.utc):
            raise ValueError(f"targetTime '{target_time}' is in the future; no WAL reaches it yet")
        return target_time


def pooler_name(cluster_name: str) -> str:
    """The Pooler, and the Service CloudNativePG makes for it, of a database: what its clients connect to."""
    return f"{cluster_name}-pooler-rw"


class PoolerConfig(CamelModel):
    """A CloudNativePG Pooler (PgBouncer, read-write) in front of the database: the services connect to it."""

    instances: int = Field(default=2, ge=1, le=20)
    # transaction: a server connection per transaction (most apps); session: per client session (apps that use
    # session state: prepared statements without protocol support, advisory locks, SET, LISTEN).
    pool_mode: Literal["transaction", "session"] = "transaction"
    max_client_connections: int = Field(default=1000, ge=10, le=100_000)
    default_pool_size: int = Field(default=20, ge=1, le=1000)  # server connections per instance (one app user)
    image: str = DEFAULT_PGBOUNCER_IMAGE

    @field_validator("image")
    @classmethod
    def image_is_pinned(cls, image: str) -> str:
        return pinned_image(image)

    @property
    def server_connections(self) -> int:
        """The most connections all instances together open to PostgreSQL."""
        return self.instances * self.default_pool_size


class DatabaseConfig(CamelModel):
    """One PostgreSQL cluster (CloudNativePG) and the services allowed to use it."""

    name: str = Field(pattern=DNS_LABEL, max_length=40)
    instances: int = Field(default=1, ge=1, le=9)
    storage: VolumeSettings
    wal_storage: Optional[VolumeSettings] = None
    resources: ContainerResources
    parameters: dict[str, str] = Field(default_factory=dict)
    used_by: list[str] = Field(default_factory=list)
    database: Optional[str] = Field(default=None, pattern=PG_IDENTIFIER)  # default: the name, '-' -> '_'
    owner: Optional[str] = Field(default=None, pattern=PG_IDENTIFIER)  # default: the database name
    enable_superuser_access: bool = False
    env_prefix: str = Field(default="DATABASE", pattern=r"^[A-Z][A-Z0-9_]*$")
    backup: DatabaseBackup = DatabaseBackup()
    # The PostgreSQL image, pinned: CloudNativePG reads the major version from its tag, so a tag is required
    # (a digest may follow it: 'ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie@sha256:...').
    image_name: str = DEFAULT_POSTGRES_IMAGE
    restore: Optional[DatabaseRestore] = None
    pooler: Optional[PoolerConfig] = None

    @field_validator("image_name")
    @classmethod
    def image_has_a_major_version_tag(cls, image: str) -> str:
        tag = image_tag(image.split("@", 1)[0])
        if tag is None or not re.match(r"^[0-9]+", tag):
            raise ValueError(
                f"imageName '{image}' needs a tag that starts with the PostgreSQL major version (CloudNativePG reads the "
                f"version from it), e.g. '{DEFAULT_POSTGRES_IMAGE}', optionally followed by '@sha256:<digest>'"
            )
        return image

    @model_validator(mode="after")
    def pooler_fits_max_connections(self) -> "DatabaseConfig":
        if self.pooler is None:
            return self
        configured = self.parameters.get("max_connections", str(POSTGRES_DEFAULT_MAX_CONNECTIONS))
        if not configured.isdigit():
            return self  # PostgreSQL refuses it at startup; nothing to compare against
        max_connections = int(configured)
        available = max_connections - RESERVED_CONNECTIONS
        if self.pooler.server_connections > available:
            raise ValueError(
                f"pooler opens up to {self.pooler.server_connections} server connections ({self.pooler.instances} "
                f"instances x defaultPoolSize {self.pooler.default_pool_size}), more than the {available} that "
                f"max_connections {max_connections} leaves for clients; lower pooler.defaultPoolSize or raise "
                "parameters.max_connections"
            )
        return self

    @property
    def restores_from(self) -> Optional[str]:
        """The name of the database of this stack it is restored from, if any."""
        return self.restore.source if self.restore and isinstance(self.restore.source, str) else None

    @field_validator("parameters", mode="before")
    @classmethod
    def parameters_as_strings(cls, parameters: Any) -> Any:
        """YAML reads `max_connections: 200` as a number and `on` as true; PostgreSQL wants the text."""
        if not isinstance(parameters, dict):
            return parameters
        as_text = {True: "on", False: "off"}
        return {
            key: as_text[value] if isinstance(value, bool) else str(value) if isinstance(value, (int, float)) else value
            for key, value in parameters.items()
        }

    @field_validator("parameters")
    @classmethod
    def parameters_not_managed_by_cnpg(cls, parameters: dict[str, str]) -> dict[str, str]:
        fixed = sorted(set(parameters) & CNPG_FIXED_PARAMETERS)
        if fixed:
            raise ValueError(f"{fixed} are managed by CloudNativePG and cannot be set; remove them")
        return parameters

    @property
    def database_name(self) -> str:
        return self.database or self.name.replace("-", "_")

    @property
    def owner_name(self) -> str:
        return self.owner or self.database_name


class CnpgSettings(CamelModel):
    """Where the CloudNativePG operator runs, and how database pods reach the Kubernetes API (they must)."""

    operator_namespace: str = Field(default="cnpg-system", pattern=DNS_LABEL)
    api_server_cidrs: list[str] = Field(default_factory=list)
    api_server_ports: list[int] = Field(default_factory=lambda: [443, 6443], min_length=1)

    @field_validator("api_server_cidrs")
    @classmethod
    def cidrs_are_valid(cls, cidrs: list[str]) -> list[str]:
        bad = []
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                bad.append(cidr)
        if bad:
            raise ValueError(f"{bad} are not CIDRs like '10.96.0.1/32'")
        return cidrs


# The types of the PostgreSQL settings stack files commonly set (PostgreSQL 18 docs, "Server Configuration"): a value
# of the wrong form stops the server at start-up ("invalid value for parameter"), so the database never comes up.
# Units are PostgreSQL's own and case-sensitive (kB, MB, GB, TB; us, ms, s, min, h, d). Unlisted settings pass as given.
_PG_INTEGER = (r"-?[0-9]+", "a whole number, e.g. 200")
_PG_MEMORY = (r"-?[0-9]+ ?(B|kB|MB|GB|TB)?", "a size: a number with an optional unit B, kB, MB, GB or TB (case matters), e.g. 256MB")
_PG_TIME = (r"-?[0-9]+ ?(us|ms|s|min|h|d)?", "a duration: a number with an optional unit us, ms, s, min, h or d, e.g. 30s")
_PG_REAL = (r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", "a number, e.g. 1.1")
_PG_BOOL = (r"(?i)(on|off|true|false|yes|no|1|0)", "on or off")
POSTGRES_PARAMETER_FORMS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(
        ("max_connections", "max_wal_senders", "max_replication_slots", "max_worker_processes", "max_parallel_workers",
         "max_parallel_workers_per_gather", "max_parallel_maintenance_workers", "max_locks_per_transaction",
         "max_prepared_transactions", "autovacuum_max_workers", "default_statistics_target", "effective_io_concurrency",
         "pg_stat_statements.max"),
        _PG_INTEGER,
    ),
    **dict.fromkeys(
        ("shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size", "temp_buffers", "wal_buffers",
         "max_wal_size", "min_wal_size", "wal_keep_size", "autovacuum_work_mem", "logical_decoding_work_mem"),
        _PG_MEMORY,
    ),
    **dict.fromkeys(
        ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "idle_session_timeout",
         "checkpoint_timeout", "log_min_duration_statement", "log_autovacuum_min_duration", "autovacuum_naptime",
         "deadlock_timeout", "wal_receiver_timeout", "wal_sender_timeout"),
        _PG_TIME,
    ),
    **dict.fromkeys(
        ("random_page_cost", "seq_page_cost", "checkpoint_completion_target", "autovacuum_vacuum_scale_factor",
         "autovacuum_analyze_scale_factor"),
        _PG_REAL,
    ),
    **dict.fromkeys(
        ("jit", "log_checkpoints", "log_connections", "log_disconnections", "log_lock_waits", "track_io_timing",
         "hot_standby_feedback"),
        _PG_BOOL,
    ),  # fmt: skip
    "huge_pages": ("(on|off|try)", "on, off or try"),
    "log_statement": ("(none|ddl|mod|all)", "none, ddl, mod or all"),
    "synchronous_commit": ("(on|off|local|remote_write|remote_apply)", "on, off, local, remote_write or remote_apply"),
    "pg_stat_statements.track": ("(top|all|none)", "top, all or none"),
}


def postgres_parameter_problems(databases: Any) -> list[tuple[tuple, str]]:
    """(key path, why) of each setting in databases[].parameters that PostgreSQL would refuse at start-up."""
    problems: list[tuple[tuple, str]] = []
    for index, database in enumerate(databases if isinstance(databases, list) else []):
        parameters = database.get("parameters") if isinstance(database, dict) else None
        for name, value in parameters.items() if isinstance(parameters, dict) else []:
            form = POSTGRES_PARAMETER_FORMS.get(name)
            text = ("on" if value else "off") if isinstance(value, bool) else str(value)
            if form is None or not isinstance(value, (dict, list)) and re.fullmatch(form[0], text.strip()):
                continue  # unlisted, or of its form
            problems.append((
                ("databases", index, "parameters", name),
                f"PostgreSQL would refuse to start with {name} = {text!r}; it takes {form[1]}",
            ))  # fmt: skip
    return problems
