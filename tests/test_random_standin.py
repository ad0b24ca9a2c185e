"""The `make e2e` stand-in for pulumi-random (e2e/standins/random_provider.py), driven over real gRPC.

The plugin is started the way the engine starts it -- a subprocess given the engine address, which must print only
its port on stdout -- and talked to with the pulumirpc.ResourceProvider client stub.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from e2e.standins import random_provider as rp
from tools import engine

REPO = Path(__file__).resolve().parent.parent
TYPE = "random:index/randomPassword:RandomPassword"
URN = f"urn:pulumi:e2e::platform::{TYPE}::pw"


@pytest.fixture(scope="module")
def stub():
    proc = subprocess.Popen(
        [sys.executable, "-m", "e2e.standins.random_provider", "127.0.0.1:1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    channel = None
    try:
        line = proc.stdout.readline().decode()
        assert line.endswith("\n") and line.strip().isdigit(), f"plugin printed {line!r} instead of a port"
        channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
        grpc.channel_ready_future(channel).result(timeout=10)
        yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        if channel is not None:
            channel.close()
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.poll() is not None


def struct(props: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(props)
    return s


def as_dict(s: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(s)


def check(stub, news: dict) -> provider_pb2.CheckResponse:
    return stub.Check(provider_pb2.CheckRequest(urn=URN, type=TYPE, name="pw", news=struct(news)))


def create(stub, inputs: dict, preview: bool = False) -> tuple[str, dict]:
    checked = check(stub, inputs)
    assert not checked.failures, checked.failures
    resp = stub.Create(
        provider_pb2.CreateRequest(urn=URN, type=TYPE, name="pw", properties=checked.inputs, preview=preview)
    )
    return resp.id, as_dict(resp.properties)


def result_of(outputs: dict) -> str:
    result = outputs["result"]
    assert engine.is_secret(result) and set(result) == {engine.SECRET_SIG, "value"}, "result must be a Pulumi secret"
    return result["value"]


def test_plugin_info_reports_the_version_the_sdk_requests(stub):
    assert stub.GetPluginInfo(empty_pb2.Empty()).version == "4.21.4"


def test_create_returns_a_secret_alphanumeric_password_of_the_asked_length(stub):
    for length in (24, 32):
        id_, outputs = create(stub, {"length": length, "special": False})
        password = result_of(outputs)
        assert id_ == "none"
        assert len(password) == length
        assert set(password) <= set(string.ascii_letters + string.digits), password
        assert outputs["length"] == length and outputs["special"] is False
    # Two creates give two different passwords.
    assert result_of(create(stub, {"length": 32, "special": False})[1]) != password


def test_check_fills_upstream_defaults_without_overwriting_given_values(stub):
    defaults = {
        "upper": True,
        "lower": True,
        "numeric": True,
        "number": True,
        "special": True,
        "minUpper": 0,
        "minLower": 0,
        "minNumeric": 0,
        "minSpecial": 0,
    }
    assert as_dict(check(stub, {"length": 24}).inputs) == {"length": 24, **defaults}
    given = {"length": 24, "special": False, "numeric": False, "minLower": 3}
    assert as_dict(check(stub, given).inputs) == {**defaults, **given, "number": False}


def test_override_special_is_the_only_special_set(stub):
    allowed = set(string.ascii_letters + string.digits + "_-")
    seen = set()
    for _ in range(20):
        password = result_of(create(stub, {"length": 40, "overrideSpecial": "_-", "minSpecial": 2})[1])
        assert set(password) <= allowed, password
        seen |= set(password)
    assert {"_", "-"} <= seen


def test_minimums_are_honoured_and_shuffled(stub):
    first_chars = set()
    for _ in range(150):
        password = result_of(
            create(
                stub,
                {"length": 8, "minUpper": 2, "minLower": 2, "minNumeric": 2, "minSpecial": 2, "overrideSpecial": "#"},
            )[1]
        )
        assert len(password) == 8
        assert sum(c.isupper() for c in password) >= 2, password
        assert sum(c.islower() for c in password) >= 2, password
        assert sum(c.isdigit() for c in password) >= 2, password
        assert password.count("#") >= 2, password
        c = password[0]
        first_chars.add("upper" if c.isupper() else "lower" if c.islower() else "digit" if c.isdigit() else c)
    # The minimums are not stuck at fixed positions: every class shows up first at some point.
    assert first_chars == {"upper", "lower", "digit", "#"}, first_chars


def test_preview_create_leaves_result_unknown(stub):
    id_, outputs = create(stub, {"length": 24, "special": False}, preview=True)
    assert "result" not in outputs
    assert outputs["length"] == 24
    assert id_ == ""


@pytest.mark.parametrize(
    "news",
    [{"length": 0}, {"length": 3, "minUpper": 2, "minNumeric": 2}, {"special": False}],
    ids=["zero", "below-sum-of-minimums", "missing"],
)
def test_check_rejects_bad_length(stub, news):
    failures = check(stub, news).failures
    assert [f.property for f in failures] == ["length"], failures
    assert failures[0].reason


def test_diff_replaces_on_a_changed_length_and_is_empty_otherwise(stub):
    old_inputs = check(stub, {"length": 24, "special": False}).inputs
    _, outputs = create(stub, {"length": 24, "special": False})

    def diff(news: dict) -> provider_pb2.DiffResponse:
        return stub.Diff(
            provider_pb2.DiffRequest(
                id="none", urn=URN, type=TYPE, name="pw",
                olds=struct(outputs), old_inputs=old_inputs, news=check(stub, news).inputs,
            )
        )

    same = diff({"length": 24, "special": False})
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE
    assert list(same.replaces) == []

    longer = diff({"length": 32, "special": False})
    assert longer.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(longer.replaces) == ["length"]
    assert longer.deleteBeforeReplace is False
    assert longer.detailedDiff["length"].kind == provider_pb2.PropertyDiff.UPDATE_REPLACE


def test_other_resource_types_are_refused(stub):
    with pytest.raises(grpc.RpcError) as err:
        stub.Check(provider_pb2.CheckRequest(urn=URN, type="random:index/randomUuid:RandomUuid", news=struct({})))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
