"""The platform program: one stack file in, one application platform out.

Order matters and data only flows down: stack config -> (local add-ons) -> namespace baseline -> team access ->
databases and caches (backing services) -> services -> ingress -> monitoring.
"""

import pulumi
import pulumi_kubernetes as k8s

import stack_config
from components.addons import ClusterAddons, ClusterAddonsArgs
from components.app_service import AppService, AppServiceArgs, Peer, one_off_names
from components.autoscaling_config import keda_reads, keda_reads_cache
from components.backup_bucket import BackupBucket, BucketSettings
from components.cache import Cache, CacheArgs
from components.database_cluster import BackupTarget, DatabaseCluster, DatabaseClusterArgs, MetricsScraper
from components.ingress import Ingress, IngressArgs
from components.monitoring import MonitoredCache, MonitoredDatabase, Monitoring, MonitoringArgs
from components.namespace_baseline import NamespaceBaseline, NamespaceBaselineArgs
from components.team_access import TeamAccess, TeamAccessArgs


def stack_config_keys() -> set[str]:
    """Every key the stack sets: the language host passes them in PULUMI_CONFIG, the Automation API's inline
    programs and the offline engine set them in the SDK's config map (pulumi.runtime.config)."""
    from pulumi.runtime import config

    return set(config.CONFIG.get()) | set(config.get_config_env())


def read_config() -> stack_config.StackConfig:
    """Validates the whole stack config before a single resource is registered."""
    project = pulumi.get_project()
    try:
        return stack_config.load(
            stack=pulumi.get_stack(),
            project=project,
            read_value=lambda key: pulumi.runtime.get_config(f"{project}:{key}"),
            is_secret=lambda key: pulumi.runtime.is_config_secret(f"{project}:{key}"),
            config_keys=stack_config_keys(),
        )
    except stack_config.ConfigError as error:
        # RunError: the CLI prints the message alone, without a Python traceback.
        raise pulumi.RunError(str(error)) from None


def cluster_provider(config: stack_config.StackConfig) -> k8s.Provider:
    target = config.kubernetes
    kubeconfig = None
    if target.kubeconfig_secret_key:
        kubeconfig = pulumi.Config().require_secret(target.kubeconfig_secret_key)
    return k8s.Provider(
        "cluster",
        kubeconfig=kubeconfig,
        context=target.context,
        render_yaml_to_directory=target.render_directory,
        opts=pulumi.ResourceOptions(protect=config.environment is stack_config.Environment.PROD),
    )


def deploy_databases(
    config: stack_config.StackConfig, secrets: pulumi.Config, opts: pulumi.ResourceOptions
) -> dict[str, DatabaseCluster]:
    """The stack's backup bucket (one, shared; each database archives under its own path) and its databases."""
    prod = config.environment is stack_config.Environment.PROD
    backups = config.backups
    keys = (None, None)
    bucket = None
    if backups is not None and any(config.backs_up(database) for database in config.databases):
        if backups.credentials.static_keys:
            keys = (
                secrets.require_secret(backups.credentials.access_key_id_key),
                secrets.require_secret(backups.credentials.secret_access_key_key),
            )
        bucket = BackupBucket(
            "backup-bucket",
            BucketSettings(
                bucket_name=backups.bucket,
                region=backups.region,
                endpoint_url=backups.admin_endpoint or backups.endpoint,
                # Deleted or overwritten backups stay recoverable as long as barman keeps backups.
                retention_days=backups.retention_days,
                sse=backups.encryption,
            ),
            access_key_id=keys[0],
            secret_access_key=keys[1],
            # The backups outlive the stack: in prod neither `destroy` nor a replacement may delete the bucket.
            opts=pulumi.ResourceOptions(protect=prod, retain_on_delete=prod),
        )
    access = BackupTarget(backups, access_key_id=keys[0], secret_access_key=keys[1], bucket=bucket) if backups else None
    databases: dict[str, DatabaseCluster] = {}
    by_name = {database.name: database for database in config.databases}

    def create(database) -> DatabaseCluster:
        if database.name in databases:
            return databases[database.name]
        # A restored database reads its source's ObjectStore: the source comes first (the config refuses cycles).
        source = [create(by_name[database.restores_from])] if database.restores_from else []
        databases[database.name] = DatabaseCluster(
            database.name,
            DatabaseClusterArgs(
                database=database,
                namespace=config.namespace,
                cnpg=config.cnpg,
                backup=access if bucket is not None and config.backs_up(database) else None,
                restore_access=access if database.restore else None,
                direct_clients=migration_clients(config, database),
                outside_clients=[config.keda.operator_peer] if keda_reads(config.services, database.name) else [],
                spread_strictly=prod,
                protect=prod,
                metrics_scraper=metrics_scraper(config),
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=source)),
        )
        return databases[database.name]

    for database in config.databases:
        create(database)
    return databases


def migration_clients(config: stack_config.StackConfig, database) -> list[str]:
    """The one-off Jobs (migrations, tasks) of the services using a database, by their pods' name: they connect past
    any pooler."""
    services = {service.name: service for service in config.services}
    return [pod_name for name in database.used_by for pod_name in one_off_names(services[name])]


def deploy_caches(config: stack_config.StackConfig, secrets: pulumi.Config, opts: pulumi.ResourceOptions) -> dict[str, Cache]:
    """The stack's caches: deployed here (failover, spread and protected in prod), or the wiring to external ones."""
    prod = config.environment is stack_config.Environment.PROD
    return {
        cache.name: Cache(
            cache.name,
            CacheArgs(
                cache=cache,
                namespace=config.namespace,
                metrics_scraper=metrics_scraper(config),
                spread_strictly=prod,
                protect=prod,
                external_password=secrets.require_secret(cache.external.password_key) if cache.external else None,
                outside_clients=[config.keda.operator_peer] if keda_reads_cache(config.services, cache.name) else [],
            ),
            opts=opts,
        )
        for cache in config.caches
    }


class AddonDependencies:
    """What each kind of component waits for: nothing when the cluster already has its operators."""

    ingress_dependencies: tuple = ()
    monitoring_dependencies: tuple = ()
    database_dependencies: tuple = ()
    autoscaling_dependencies: tuple = ()


def deploy_addons(config: stack_config.StackConfig, on_cluster: pulumi.ResourceOptions):
    """The local cluster's operators (Helm releases), each in the namespace the rest of the stack expects it in."""
    if not config.addons.any:
        return AddonDependencies()
    ingress = config.ingress
    return ClusterAddons(
        "addons",
        ClusterAddonsArgs(
            addons=config.addons,
            gateway_namespace=ingress.controller_namespace if ingress else "envoy-gateway-system",
            gateway_class_name=(ingress.gateway_class_name if ingress else None) or "eg",
            monitoring_namespace=config.monitoring.namespace,
            monitor_selector_labels=dict(config.monitoring.selector_labels),
            cnpg_namespace=config.cnpg.operator_namespace,
            keda_namespace=config.keda.operator_namespace,
            cert_manager_gateway_api=ingress is None or ingress.mode == "gateway",
        ),
        opts=on_cluster,
    )


def metrics_scraper(config: stack_config.StackConfig) -> MetricsScraper:
    """Prometheus as the stack's monitoring config describes it: databases' PodMonitors and policies follow it."""
    monitoring = config.monitoring
    return MetricsScraper(
        namespace=monitoring.namespace,
        pod_labels=dict(monitoring.prometheus_pod_labels),
        monitor_labels=dict(monitoring.selector_labels),
    )


def deploy(config: stack_config.StackConfig) -> None:
    secrets = pulumi.Config()
    # In prod every resource is protected (children inherit it from their component), not only the data:
    # `pulumi destroy` deletes the unprotected resources before it reaches a protected one (`make e2e` showed
    # it), so protecting the data alone would still take prod down. Removing prod takes `pulumi state unprotect`.
    on_cluster = pulumi.ResourceOptions(provider=cluster_provider(config), protect=config.environment is stack_config.Environment.PROD)

    def after(*resources) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=list(resources)))

    addons = deploy_addons(config, on_cluster)
    baseline = NamespaceBaseline(
        "baseline",
        NamespaceBaselineArgs(
            config.namespace,
            config.quota,
            config.container_defaults,
            pod_security_version=config.pod_security.version if config.pod_security else None,
        ),
        opts=on_cluster,
    )
    if config.access:
        access = TeamAccess(
            "access",
            TeamAccessArgs(namespace=config.namespace, grants=list(config.access), namespace_resource=baseline.namespace),
            opts=after(baseline),
        )
        if access.namespace_access is not None:
            # For the cluster's owners to apply once: README, "Team access".
            pulumi.export("namespaceAccess", access.namespace_access)
    databases = deploy_databases(
        config,
        secrets,
        after(baseline, *addons.database_dependencies),
    )
    caches = deploy_caches(config, secrets, after(baseline))
    ports = {service.name: service.port for service in config.services}
    services = {}
    for service in config.services:
        used = [databases[database.name] for database in config.databases_used_by(service.name)]
        used_caches = [caches[cache.name] for cache in config.caches_used_by(service.name)]
        services[service.name] = AppService(
            service.name,
            AppServiceArgs(
                service=service,
                # Where its databases are goes to its ConfigMap (not secret); credentials come from their Secrets.
                backing_services=[*used, *used_caches],
                namespace=config.namespace,
                image=config.pulled(service.image),
                secret_values={env: secrets.require_secret(key) for env, key in service.secret_env.items()},
                callers=[other.name for other in config.services if service.name in other.calls],
                callees=[Peer(callee, ports[callee]) for callee in service.calls],
                spread_strictly=config.environment is stack_config.Environment.PROD,
                migrations_image=config.pulled(service.migrations.image) if service.migrations and service.migrations.image else None,
                task_images={task.name: config.pulled(task.image) for task in service.tasks if task.image},
                migrations_env={key: value for database in used for key, value in database.migration_env().items()},
                migrations_secret_refs=[ref for database in used for ref in database.migration_secret_refs()],
                connection_secrets={database.cluster_name: database.connection_secret() for database in used},
            ),
            opts=after(baseline, *used, *used_caches, *addons.autoscaling_dependencies),
        )
    if config.ingress is not None:
        ingress = Ingress(
            "ingress",
            IngressArgs(config=config.ingress, namespace=config.namespace, service_ports=ports),
            opts=after(baseline, *addons.ingress_dependencies),
        )
        pulumi.export("urls", ingress.urls)
    alerting = config.monitoring.alerting
    Monitoring(
        "monitoring",
        MonitoringArgs(
            config=config.monitoring,
            namespace=config.namespace,
            services=list(config.services),
            databases=[MonitoredDatabase(d.name, d.instances, config.backs_up(d)) for d in config.databases],
            caches=[MonitoredCache(c.name, c.replicas, c.failover is not None, c.maxmemory_policy) for c in config.caches if c.external is None],
            # The alert receivers' credentials, from encrypted config (stack_config has checked each is set --secret).
            receiver_secrets={key: secrets.require_secret(key) for key in alerting.secret_keys} if alerting else {},
        ),
        opts=after(baseline, *addons.monitoring_dependencies),
    )
    pulumi.export("namespace", config.namespace)
    # Where each database is and which Secret holds its credentials; never the credentials themselves.
    pulumi.export("databases", {name: {"host": db.host, "secret": db.secret_name} for name, db in databases.items()})
    pulumi.export("caches", {name: {"host": cache.host, "port": cache.port, "secret": cache.secret_name} for name, cache in caches.items()})
    pulumi.export("services", {name: app.url for name, app in services.items() if app.url})


deploy(read_config())
