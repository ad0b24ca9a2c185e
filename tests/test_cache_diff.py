"""`tools.preview --diff` on cache changes: new data volumes are the data-losing replacement they are (listed first),
a new engine version an update whose effect the diff spells out."""

from __future__ import annotations

import json

import pytest

from components import cache as cc
from tools import diff as stack_diff
from tools import engine, preview


def render_with(stack: str, change) -> dict:
    config, secret_keys = engine.stack_config(stack)
    caches = json.loads(config["platform:caches"])
    change(caches[0])
    config = {**config, "platform:caches": json.dumps(caches)}
    return preview.snapshot(engine.render(stack, config=config, secret_keys=list(secret_keys)))


@pytest.fixture(scope="module")
def snapshots(rendered) -> dict:
    return {stack: preview.snapshot(rendered[stack]) for stack in ("staging", "prod")}


def test_a_bigger_volume_replaces_the_data_nodes_and_comes_first(snapshots):
    head = render_with("prod", lambda cache: cache["persistence"].update(size="10Gi"))
    diff = stack_diff.diff_snapshots("prod", snapshots["prod"], head)
    first = diff.changes[0]
    assert (first.name, first.action, first.destroys_data, first.protect) == ("cache-data", "replace", True, True)
    assert [path for path, _ in first.replaced_by] == ["spec.volumeClaimTemplates"]
    assert "stateful resource(s) would lose data" in diff.summary()
    text = stack_diff.format_text(diff)
    assert "+- kubernetes:apps/v1:StatefulSet cache-data [protected]  !! replaces a stateful resource" in text


def test_persistence_switched_on_is_a_replacement_too(snapshots):
    head = render_with("staging", lambda cache: cache.update(persistence={"mode": "aof", "size": "2Gi"}))
    diff = stack_diff.diff_snapshots("staging", snapshots["staging"], head)
    assert diff.changes[0].name == "cache-data" and diff.changes[0].destroys_data
    # appendonly in the config, and the pods rolled for it: an update of the ConfigMap.
    assert any(change.name == "cache-config" and change.action == "update" for change in diff.changes)


def test_a_new_engine_version_is_an_update_that_says_what_it_does(snapshots):
    head = render_with("staging", lambda cache: cache.update(image="docker.io/valkey/valkey:9.0.0"))
    diff = stack_diff.diff_snapshots("staging", snapshots["staging"], head)
    changes = {change.name: change for change in diff.changes}
    assert set(changes) == {"cache-data", "cache-sentinels"}
    for change in changes.values():
        assert change.action == "update" and not change.destroys_data
        ((path, why),) = change.refused_in_place
        assert path == f"spec.template.metadata.labels.{cc.ENGINE_VERSION_LABEL}" and "new cache engine version" in why
        label = next(f for f in change.fields if f.path == path)
        assert (label.before, label.after) == ("8.1.4", "9.0.0")
    assert "!! spec.template.metadata.labels.platform.example.com/engine-version changed: a new cache engine version" in stack_diff.format_text(diff)
