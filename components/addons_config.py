"""The `addons` stack config key: what components.addons installs on a local cluster."""

from __future__ import annotations

from components.config_base import CamelModel

class AddonsConfig(CamelModel):
    """Cluster add-ons the program installs with Helm (local clusters only; staging and prod bring their own)."""

    cert_manager: bool = False
    cnpg: bool = False  # the CloudNativePG operator and its Barman Cloud plugin
    gateway_controller: bool = False  # Envoy Gateway and its GatewayClass
    kube_prometheus_stack: bool = False
    keda: bool = False  # KEDA, for services' autoscaling.keda (ScaledObjects)
    vpa: bool = False  # the Vertical Pod Autoscaler, for services' `vertical`

    @property
    def any(self) -> bool:
        return self.cert_manager or self.cnpg or self.gateway_controller or self.kube_prometheus_stack or self.keda or self.vpa
