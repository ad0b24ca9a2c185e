"""The `databases[]` and `cnpg` stack config keys: one components.database_cluster.DatabaseCluster per database."""

from __future__ import annotations

import ipaddress
from typing import Any, Optional

from pydantic import Field, field_validator

from components.config_base import DNS_LABEL, QUANTITY, CamelModel, ContainerResources

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
