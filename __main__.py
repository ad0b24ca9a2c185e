"""The platform program: one stack file in, one application platform out.

Order matters and data only flows down: stack config -> namespace baseline -> services.
"""

import pulumi
import pulumi_kubernetes as k8s

import stack_config
from components.app_service import AppService, AppServiceArgs, Peer
from components.namespace_baseline import NamespaceBaseline, NamespaceBaselineArgs


def read_config() -> stack_config.StackConfig:
    """Validates the whole stack config before a single resource is registered."""
    project = pulumi.get_project()
    try:
        return stack_config.load(
            stack=pulumi.get_stack(),
            project=project,
            read_value=lambda key: pulumi.runtime.get_config(f"{project}:{key}"),
            is_secret=lambda key: pulumi.runtime.is_config_secret(f"{project}:{key}"),
        )
    except stack_config.ConfigError as error:
        # RunError: the CLI prints the message alone, without a Python traceback.
        raise pulumi.RunError(str(error)) from None


def cluster_provider(config: stack_config.StackConfig) -> k8s.Provider:
    target = config.kubernetes
    if target.kubeconfig_secret_key:
        kubeconfig = pulumi.Config().require_secret(target.kubeconfig_secret_key)
        return k8s.Provider("cluster", kubeconfig=kubeconfig)
    return k8s.Provider("cluster", context=target.context)


def deploy(config: stack_config.StackConfig) -> None:
    secrets = pulumi.Config()
    on_cluster = pulumi.ResourceOptions(provider=cluster_provider(config))
    baseline = NamespaceBaseline(
        "baseline",
        NamespaceBaselineArgs(config.namespace, config.quota, config.container_defaults),
        opts=on_cluster,
    )
    ports = {service.name: service.port for service in config.services}
    services = {}
    for service in config.services:
        services[service.name] = AppService(
            service.name,
            AppServiceArgs(
                service=service,
                namespace=config.namespace,
                image=config.image_for(service),
                secret_values={env: secrets.require_secret(key) for env, key in service.secret_env.items()},
                callers=[other.name for other in config.services if service.name in other.calls],
                callees=[Peer(callee, ports[callee]) for callee in service.calls],
                spread_strictly=config.environment is stack_config.Environment.PROD,
            ),
            opts=pulumi.ResourceOptions(provider=on_cluster.provider, depends_on=[baseline]),
        )
    pulumi.export("namespace", config.namespace)
    pulumi.export("services", {name: app.url for name, app in services.items()})


deploy(read_config())
