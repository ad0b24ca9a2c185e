"""Autoscaling config errors (#17) through the whole stack config load: each names the stack file, the key path and a
fix; and the quota/LimitRange checks count every workload at its maximum."""

from __future__ import annotations

import pytest

from tests.test_config import api, load, orders, problems_for, stack_values, web

PROMETHEUS = {"type": "prometheus", "serverAddress": "http://prometheus.monitoring.svc:9090", "query": "sum(queue_depth)", "threshold": 50}


def only(problems: list[str], fragment: str) -> str:
    matching = [problem for problem in problems if fragment in problem]
    assert len(matching) == 1, problems
    return matching[0]


def set_keda(service: dict, **keda) -> None:
    service["autoscaling"] = {"minReplicas": 3, "maxReplicas": 6, "keda": {"triggers": [PROMETHEUS], **keda}}


def test_keda_plus_an_hpa_target_is_refused_with_the_rm_fix():
    def mutate(values, _):
        set_keda(api(values))
        api(values)["autoscaling"]["targetCpuPercent"] = 60

    problem = only(problems_for(mutate, "prod"), "targetCpuPercent")
    assert problem.startswith("platform:services[1].autoscaling.targetCpuPercent: 'api' is scaled by KEDA")
    assert "{type: cpu, utilizationPercent: 60}" in problem
    assert "`pulumi config rm --stack prod --path 'services[1].autoscaling.targetCpuPercent'`" in problem


def test_an_auto_vpa_on_the_resource_the_hpa_scales_on_is_refused():
    def mutate(values, _):
        web(values)["vertical"] = {"mode": "auto", "maxAllowed": {"cpu": "1", "memory": "1Gi"}}

    problem = only(problems_for(mutate, "prod"), "vertical.mode")
    assert problem.startswith("platform:services[0].vertical.mode: a VerticalPodAutoscaler in mode auto changes the cpu")
    assert "set vertical.controlledResources: ['memory']" in problem
    assert "`pulumi config set --stack prod --path 'services[0].vertical.mode' recommend`" in problem


def test_an_auto_vpa_on_the_other_resource_or_a_recommending_one_loads():
    values, secret_keys = stack_values("prod")
    web(values)["vertical"] = {"mode": "auto", "controlledResources": ["memory"], "maxAllowed": {"cpu": "1", "memory": "1Gi"}}
    api(values)["vertical"] = {"mode": "recommend"}
    config = load(values, secret_keys, "prod")
    assert config.services[0].vertical.controlled_resources == ["memory"]


def test_prod_web_never_scales_to_zero_staging_web_may():
    def mutate(values, _):
        set_keda(web(values), scaleToZero=True)

    problem = only(problems_for(mutate, "prod"), "scaleToZero")
    assert problem.startswith("platform:services[0].autoscaling.keda.scaleToZero: 'web' is a web service")
    assert "`pulumi config rm --stack prod --path 'services[0].autoscaling.keda.scaleToZero'`" in problem
    values, secret_keys = stack_values("staging")
    set_keda(web(values), scaleToZero=True)
    assert load(values, secret_keys, "staging").services[0].autoscaling.keda.scale_to_zero


def test_a_postgresql_trigger_reads_a_database_the_service_uses():
    def mutate(values, _):
        set_keda(web(values))
        web(values)["autoscaling"]["keda"]["triggers"] = [
            {"type": "postgresql", "database": "orders", "query": "SELECT 1", "targetQueryValue": 5}
        ]

    problem = only(problems_for(mutate, "prod"), "triggers[0].database")
    assert "'orders' is not a database 'web' uses (its usedBy)" in problem and "add 'web' to that database's usedBy" in problem


def test_a_fallback_outside_the_bounds_is_refused():
    def mutate(values, _):
        set_keda(api(values), fallback={"failureThreshold": 3, "replicas": 20})

    problem = only(problems_for(mutate, "prod"), "fallback.replicas")
    assert "20 is outside minReplicas..maxReplicas (3..6)" in problem
    assert "--path 'services[1].autoscaling.keda.fallback.replicas' 6" in problem


def test_a_maximum_beyond_the_quota_names_the_quota_key_the_largest_workloads_and_the_fix():
    def mutate(values, _):
        api(values)["autoscaling"]["maxReplicas"] = 200

    problems = problems_for(mutate, "prod")
    problem = only(problems, "quota.requestsCpu")
    # 201 api pods (200 + the rollout's surge) x 250m alone are 50.25 cpu, beyond prod's 24, and 201 pods beyond 120.
    assert problem.startswith("platform:quota.requestsCpu: at their maxima the workloads need")
    assert "services[1].autoscaling.maxReplicas ('api', + 1 while rolling out): 201 x 250m" in problem
    assert "`pulumi config set --stack prod --path 'quota.requestsCpu' " in problem
    assert any(p.startswith("platform:quota.pods: at their maxima the workloads run") for p in problems)


def test_fixed_replicas_and_database_instances_count_too():
    def mutate(values, _):
        values["quota"]["requestsMemory"] = "700Mi"  # 4 x 64Mi + 512Mi + 128Mi (the backup sidecar) = 896Mi needed

    problem = only(problems_for(mutate, "local"), "quota.requestsMemory")
    assert "databases[0].instances ('orders', each with its backup sidecar): 1 x 640Mi" in problem


def test_an_applying_vpa_counts_at_its_max_allowed():
    def mutate(values, _):
        web(values)["vertical"] = {"mode": "initial", "controlledResources": ["memory"], "maxAllowed": {"cpu": "250m", "memory": "4Gi"}}

    problems = problems_for(mutate, "prod")
    # 11 web pods at 4Gi are 44Gi of requests: with the rest, beyond prod's 48Gi.
    assert "4Gi" in only(problems, "quota.requestsMemory")
    # Its limit follows in proportion (1Gi/256Mi = 4 x 4Gi = 16Gi), beyond the LimitRange's max of 4Gi.
    problem = only(problems, "vertical.maxAllowed.memory")
    assert problem.startswith("platform:services[0].vertical.maxAllowed.memory: at 4Gi requested, the VPA sets the limit to 16.00Gi")


@pytest.mark.parametrize(
    "mutate, key, fragment",
    [
        (lambda v: web(v)["resources"]["requests"].update(cpu="2"), "services[0].resources.requests.cpu", "2 is above the limit (1)"),
        (lambda v: api(v)["resources"]["limits"].update(memory="8Gi"), "services[1].resources.limits.memory", "LimitRange max"),
        (lambda v: orders(v)["resources"]["limits"].update(cpu="8"), "databases[0].resources.limits.cpu", "LimitRange max"),
    ],
)
def test_requests_within_limits_within_the_limit_range(mutate, key, fragment):
    problem = only(problems_for(lambda values, _: mutate(values), "prod"), f"platform:{key}:")
    assert fragment in problem and f"--path '{key}'" in problem


def test_the_shipped_stacks_fit_their_quota():
    for stack in ("local", "staging", "prod"):
        values, secret_keys = stack_values(stack)
        load(values, secret_keys, stack)


# --- a postgresql trigger: KEDA's operator reaches the database (the pooler when there is one) -------------------


def _render_with_postgresql_trigger(stack: str, keda: dict | None = None):
    import json

    from tools import engine

    config, secret_keys = engine.stack_config(stack)
    services = json.loads(config["platform:services"])
    api_service = next(service for service in services if service["name"] == "api")
    api_service["autoscaling"] = {
        "minReplicas": api_service.get("autoscaling", {}).get("minReplicas", 1),
        "maxReplicas": 4,
        "keda": {"triggers": [{"type": "postgresql", "database": "orders", "query": "SELECT count(*) FROM jobs", "targetQueryValue": 10}]},
    }
    config["platform:services"] = json.dumps(services)
    if keda is not None:
        config["platform:keda"] = json.dumps(keda)
    return engine.render(stack, config=config, secret_keys=secret_keys)


def _policy(rendering, name: str) -> dict:
    from tests.helpers import unwrap

    [policy] = [unwrap(r.inputs) for r in rendering.resources if r.inputs.get("kind") == "NetworkPolicy" and r.inputs["metadata"]["name"] == name]
    return policy


KEDA_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "autoscalers"}}, "podSelector": {"matchLabels": {"app": "keda-operator"}}}


def test_without_a_pooler_keda_reaches_the_instances_with_the_database_secret():
    rendering = _render_with_postgresql_trigger("local", keda={"operatorNamespace": "autoscalers"})
    ingress = _policy(rendering, "orders-database")["spec"]["ingress"]
    assert KEDA_PEER in ingress[0]["from"] and ingress[0]["ports"] == [{"protocol": "TCP", "port": 5432}]
    from tests.helpers import unwrap

    [authentication] = [unwrap(r.inputs) for r in rendering.resources if r.inputs.get("kind") == "TriggerAuthentication"]
    assert authentication["spec"]["secretTargetRef"] == [{"parameter": "connection", "name": "orders-app", "key": "uri"}]


def test_with_a_pooler_keda_reaches_the_pooler_only():
    rendering = _render_with_postgresql_trigger("staging")
    default_peer = {**KEDA_PEER, "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    assert default_peer in _policy(rendering, "orders-pooler-rw")["spec"]["ingress"][0]["from"]
    database_peers = [peer for rule in _policy(rendering, "orders-database")["spec"]["ingress"] for peer in rule["from"]]
    assert default_peer not in database_peers


def test_no_trigger_no_keda_peer():
    from tools import engine

    rendering = engine.render("local")
    peers = [peer for rule in _policy(rendering, "orders-database")["spec"]["ingress"] for peer in rule["from"]]
    assert not any(peer.get("podSelector") == {"matchLabels": {"app": "keda-operator"}} for peer in peers)


def test_a_caches_data_nodes_with_their_exporters_and_its_sentinels_count_against_the_quota():
    from components.capacity_config import workloads_of

    values, secret_keys = stack_values("staging")
    config = load(values, secret_keys, "staging")
    [data, sentinels] = [w for w in workloads_of(config) if w.label.startswith("caches[0]")]
    cache = config.caches[0]
    assert data.pods == 1 + cache.replicas and sentinels.pods == cache.failover.sentinels
    # Valkey's own requests plus the exporter's 10m/32Mi in each data node's pod.
    assert data.resources.requests.cpu == f"{int(quantity_of(cache.resources.requests.cpu) * 1000) + 10}m"

    def mutate(values, _):
        values["quota"]["pods"] = 12  # web 3, api 6, analytics 5, the database 2, the pooler 2 alone are 18

    problem = only(problems_for(mutate, "staging"), "quota.pods")
    assert problem.startswith("platform:quota.pods: at their maxima the workloads run")


def quantity_of(text):
    from components.autoscaling_config import quantity

    return quantity(text)


def test_a_cron_jobs_vpa_may_set_requests_at_creation_but_not_evict_a_run():
    def report(values):
        return next(service for service in values["services"] if service["name"] == "report")

    def mutate(values, _):
        report(values)["vertical"] = {"mode": "auto", "maxAllowed": {"cpu": "1", "memory": "1Gi"}}

    problem = only(problems_for(mutate, "prod"), "vertical.mode")
    assert "a cron job's pod is a run" in problem and "vertical.mode' initial`" in problem
    values, secret_keys = stack_values("prod")
    report(values)["vertical"] = {"mode": "initial", "maxAllowed": {"cpu": "1", "memory": "1Gi"}}
    assert next(s for s in load(values, secret_keys, "prod").services if s.name == "report").vertical.mode == "initial"


def test_one_off_tasks_run_together_and_count_against_the_quota():
    from components.capacity_config import workloads_of

    values, secret_keys = stack_values("staging")
    api(values)["tasks"] = [{"name": "warm-cache", "command": ["/app/warm"]}, {"name": "reindex", "command": ["/app/reindex"]}]
    [tasks] = [w for w in workloads_of(load(values, secret_keys, "staging")) if ".tasks" in w.label]
    assert tasks.pods == 2 and tasks.label.startswith("services[1].tasks ('api', 2 at once)")
