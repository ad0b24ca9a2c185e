"""The backup bucket's dynamic provider against moto (in-process and over HTTP), and its registration.

The provider methods are called directly (no Pulumi engine): that is exactly what the dynamic provider
host does with the props it deserializes. Fake AWS credentials come from the environment, so nothing
here can reach a real account; the only network use is moto's server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import dill
import pulumi
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from components import backup_bucket as bb
from components.backup_bucket import BackupBucketError, BackupBucketProvider, BucketSettings

PROJECT_DIR = Path(__file__).resolve().parent.parent
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270"
DYNAMIC_TYPE = "pulumi-python:dynamic:Resource"


# ---------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch, tmp_path):
    """Fake keys, no profile, no config files, no instance metadata: real credentials are never read."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "MOTO_ACCOUNT_ID",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws():
    """moto in-process; its state is thrown away when the test ends, so every test starts empty."""
    with mock_aws():
        yield


@pytest.fixture
def provider():
    return BackupBucketProvider()


def props_for(name="platform-backups", **overrides):
    return {**BucketSettings(bucket_name=name).to_props(), **overrides}


def s3(region="us-east-1", endpoint_url=None):
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url)


def inject_error(monkeypatch, operation, code, status, only_if_body_contains=None):
    """Make every client the provider builds answer `operation` with an S3 error, before moto sees it.

    Same short-circuit as botocore's Stubber (a `before-call` handler returning a response), but only
    for one operation, so all other calls still reach moto.
    """
    original = bb.make_s3_client

    def refuse(params, **_kwargs):
        body = params.get("body") or b""
        body = body if isinstance(body, bytes) else str(body).encode()
        if only_if_body_contains and only_if_body_contains.encode() not in body:
            return None
        error = {"Error": {"Code": code, "Message": f"injected {code}"},
                 "ResponseMetadata": {"HTTPStatusCode": status}}
        return AWSResponse(None, status, {}, None), error

    def client_with_error(props):
        client = original(props)
        client.meta.events.register(f"before-call.s3.{operation}", refuse)
        return client

    monkeypatch.setattr(bb, "make_s3_client", client_with_error)


def put_versioned_objects(client, bucket):
    """Two versions of one key, a deleted key (version + delete marker): four entries in all."""
    client.put_object(Bucket=bucket, Key="base/backup.tar", Body=b"one")
    client.put_object(Bucket=bucket, Key="base/backup.tar", Body=b"two")
    client.put_object(Bucket=bucket, Key="wal/000001", Body=b"wal")
    client.delete_object(Bucket=bucket, Key="wal/000001")


def bucket_exists(client, bucket):
    return bucket in [entry["Name"] for entry in client.list_buckets().get("Buckets", [])]


# ---------------------------------------------------------------------------------------------------
# create
# ---------------------------------------------------------------------------------------------------


def test_create_makes_a_private_versioned_encrypted_bucket_with_lifecycle(aws, provider):
    result = provider.create(props_for(retention_days=14))

    client = s3()
    assert result.id == "platform-backups"
    assert client.get_bucket_versioning(Bucket="platform-backups")["Status"] == "Enabled"
    encryption = client.get_bucket_encryption(Bucket="platform-backups")
    default = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "AES256"
    block = client.get_public_access_block(Bucket="platform-backups")["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                     "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    (rule,) = client.get_bucket_lifecycle_configuration(Bucket="platform-backups")["Rules"]
    assert rule["ID"] == bb.LIFECYCLE_RULE_ID and rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 14
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert "Expiration" not in rule  # current objects belong to the backup tool's own retention


def test_create_returns_identity_and_state_outputs(aws, provider):
    outs = provider.create(props_for(region="eu-west-1")).outs

    assert outs["arn"] == "arn:aws:s3:::platform-backups"
    assert outs["region"] == "eu-west-1"
    assert outs["endpoint_url"] is None
    assert outs["versioning"] == "Enabled"
    assert outs["public_access_block"] is True
    assert outs["retention_days"] == 30
    assert not any(key.startswith("__") for key in outs)


def test_create_outside_us_east_1_sends_a_location_constraint(aws, provider):
    provider.create(props_for(region="eu-west-1"))

    location = s3("eu-west-1").get_bucket_location(Bucket="platform-backups")["LocationConstraint"]
    assert location == "eu-west-1"


def test_create_with_kms_sets_the_key_and_bucket_key(aws, provider):
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
    outs = provider.create(props_for(sse="aws:kms", kms_key_id=key_arn)).outs

    (rule,) = s3().get_bucket_encryption(Bucket="platform-backups")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    assert rule["BucketKeyEnabled"] is True
    assert (outs["sse"], outs["kms_key_id"]) == ("aws:kms", key_arn)


def test_create_accepts_numbers_as_pulumi_sends_them(aws, provider):
    # Over the wire every number is a float.
    outs = provider.create(props_for(retention_days=21.0)).outs

    (rule,) = s3().get_bucket_lifecycle_configuration(Bucket="platform-backups")["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 21
    assert outs["retention_days"] == 21 and isinstance(outs["retention_days"], int)


# ---------------------------------------------------------------------------------------------------
# create failures
# ---------------------------------------------------------------------------------------------------


def test_create_fails_clearly_when_another_account_owns_the_name(aws, provider, monkeypatch):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")
    s3().create_bucket(Bucket="platform-backups")
    monkeypatch.delenv("MOTO_ACCOUNT_ID")

    with pytest.raises(BackupBucketError, match="already taken by another AWS account.*choose another bucket_name"):
        provider.create(props_for())


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_create_refuses_to_adopt_a_bucket_already_in_the_account(aws, provider, region):
    # In us-east-1 S3 answers CreateBucket on your own bucket with 200; elsewhere BucketAlreadyOwnedByYou.
    client = s3(region)
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    client.create_bucket(Bucket="platform-backups", **extra)

    with pytest.raises(BackupBucketError, match="already exists in your account.*import_=") as failure:
        provider.create(props_for(region=region))

    assert failure.value.__cause__ is None  # no botocore chain in front of the user
    # Not adopted: its settings are untouched and it still exists.
    assert "Status" not in client.get_bucket_versioning(Bucket="platform-backups")
    assert bucket_exists(client, "platform-backups")


def test_create_access_denied_names_operation_bucket_and_permission_and_leaves_nothing(aws, provider, monkeypatch):
    inject_error(monkeypatch, "PutBucketVersioning", "AccessDenied", 403)

    with pytest.raises(BackupBucketError) as failure:
        provider.create(props_for())

    message = str(failure.value)
    assert "access denied: PutBucketVersioning on bucket 'platform-backups'" in message
    assert "s3:PutBucketVersioning" in message
    # Create is all or nothing: the half-configured bucket was removed again.
    assert not bucket_exists(s3(), "platform-backups")


def test_create_access_denied_on_create_bucket_names_create_permission(aws, provider, monkeypatch):
    inject_error(monkeypatch, "CreateBucket", "AccessDenied", 403)

    with pytest.raises(BackupBucketError, match=r"CreateBucket on bucket 'platform-backups'.*s3:CreateBucket"):
        provider.create(props_for())


def test_missing_credentials_give_a_clear_message(provider, monkeypatch):
    # No moto and no credentials anywhere: botocore stops before sending anything.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(BackupBucketError, match="no AWS credentials found for bucket 'platform-backups'"):
        provider.read("platform-backups", props_for())


# ---------------------------------------------------------------------------------------------------
# read
# ---------------------------------------------------------------------------------------------------


def test_read_returns_the_actual_state(aws, provider):
    created = provider.create(props_for(retention_days=10))

    result = provider.read(created.id, created.outs)

    assert result.id == "platform-backups"
    assert bb.recorded_state(result.outs) == bb.desired_state(props_for(retention_days=10))


def test_read_detects_drift_and_diff_then_wants_an_update(aws, provider):
    inputs = props_for()
    created = provider.create(inputs)
    client = s3()
    client.put_bucket_versioning(Bucket="platform-backups", VersioningConfiguration={"Status": "Suspended"})
    client.delete_public_access_block(Bucket="platform-backups")
    client.delete_bucket_lifecycle(Bucket="platform-backups")

    refreshed = provider.read(created.id, created.outs).outs

    assert refreshed["versioning"] == "Suspended"
    assert refreshed["public_access_block"] is False
    assert refreshed["retention_days"] is None
    assert refreshed["force_destroy"] is False  # state-only settings survive a refresh
    diff = provider.diff(created.id, refreshed, inputs)
    assert diff.changes is True and diff.replaces == []
    assert set(bb.properties_to_update(refreshed, inputs)) == {
        "versioning", "public_access_block", "retention_days", "abort_incomplete_upload_days"}


def test_read_of_a_bucket_deleted_out_of_band_reports_it_gone(aws, provider):
    created = provider.create(props_for())
    s3().delete_bucket(Bucket="platform-backups")

    result = provider.read(created.id, created.outs)

    assert (result.id, result.outs) == ("", {})


def test_read_access_denied_is_explained(aws, provider, monkeypatch):
    created = provider.create(props_for())
    inject_error(monkeypatch, "GetBucketEncryption", "AccessDenied", 403)

    with pytest.raises(BackupBucketError, match=r"GetBucketEncryption on bucket 'platform-backups'.*s3:GetEncryptionConfiguration"):
        provider.read(created.id, created.outs)


def test_read_with_inputs_only_works_for_import(aws, provider):
    # An `import_` read gets the program's inputs, not a previous state.
    s3().create_bucket(Bucket="platform-backups")

    result = provider.read("platform-backups", props_for())

    assert result.outs["versioning"] == "Disabled"
    assert result.outs["arn"] == "arn:aws:s3:::platform-backups"


# ---------------------------------------------------------------------------------------------------
# diff and update
# ---------------------------------------------------------------------------------------------------


def recorded_outputs(**overrides):
    """State as create would record it for props_for(**overrides), without calling AWS."""
    inputs = props_for(**overrides)
    return bb.outputs(inputs, bb.desired_state(inputs))


def test_diff_sees_no_change_when_state_matches_inputs(provider):
    olds = recorded_outputs()
    wire_news = {**props_for(), "retention_days": 30.0, "__provider": "serialized", "arn": None}

    diff = provider.diff("platform-backups", olds, wire_news)

    assert diff.changes is False and diff.replaces == []


@pytest.mark.parametrize("prop, value", [
    ("bucket_name", "platform-backups-2"),
    ("region", "eu-west-1"),
    ("endpoint_url", "https://minio.example:9000"),
])
def test_diff_replaces_when_the_bucket_moves(provider, prop, value):
    diff = provider.diff("platform-backups", recorded_outputs(), props_for(**{prop: value}))

    assert diff.changes is True
    assert diff.replaces == [prop]
    # Same name elsewhere must delete first (names are global); a new name can be created first.
    assert diff.delete_before_replace is (prop != "bucket_name")


@pytest.mark.parametrize("prop, value", [
    ("retention_days", 90),
    ("sse", "aws:kms"),
    ("force_destroy", True),
    ("access_key_id", "AKIAOTHER"),
])
def test_diff_updates_in_place_for_settings(provider, prop, value):
    news = props_for(**{prop: value})

    diff = provider.diff("platform-backups", recorded_outputs(), news)

    assert diff.changes is True and diff.replaces == []
    assert prop in bb.properties_to_update(recorded_outputs(), news)


def test_diff_during_preview_with_unknown_inputs_does_not_fail(provider):
    news = props_for(retention_days=bb.UNKNOWN, bucket_name=bb.UNKNOWN)

    diff = provider.diff("platform-backups", recorded_outputs(), news)

    assert diff.changes is True and diff.replaces == ["bucket_name"]


def test_update_fixes_drift_and_changes_retention(aws, provider):
    created = provider.create(props_for())
    client = s3()
    client.put_bucket_versioning(Bucket="platform-backups", VersioningConfiguration={"Status": "Suspended"})
    client.delete_bucket_encryption(Bucket="platform-backups")
    refreshed = provider.read(created.id, created.outs).outs

    result = provider.update(created.id, refreshed, props_for(retention_days=60, force_destroy=True))

    assert client.get_bucket_versioning(Bucket="platform-backups")["Status"] == "Enabled"
    (rule,) = client.get_bucket_lifecycle_configuration(Bucket="platform-backups")["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 60
    again = provider.read(created.id, result.outs).outs
    assert again["sse"] == "AES256" and again["force_destroy"] is True
    assert provider.diff(created.id, again, props_for(retention_days=60, force_destroy=True)).changes is False


# ---------------------------------------------------------------------------------------------------
# delete
# ---------------------------------------------------------------------------------------------------


def test_delete_of_an_empty_bucket_removes_it(aws, provider):
    created = provider.create(props_for())

    provider.delete(created.id, created.outs)

    assert not bucket_exists(s3(), "platform-backups")


def test_delete_refuses_a_bucket_holding_backups(aws, provider):
    created = provider.create(props_for())
    client = s3()
    put_versioned_objects(client, "platform-backups")
    client.delete_object(Bucket="platform-backups", Key="base/backup.tar")  # only old versions remain

    with pytest.raises(BackupBucketError) as failure:
        provider.delete(created.id, created.outs)

    message = str(failure.value)
    assert "refusing to delete bucket 'platform-backups'" in message
    assert "5 object version(s) or delete marker(s)" in message
    assert "force_destroy=True" in message
    assert len(client.list_object_versions(Bucket="platform-backups")["Versions"]) == 3


def test_delete_with_force_removes_every_version_and_delete_marker(aws, provider):
    created = provider.create(props_for(force_destroy=True))
    put_versioned_objects(s3(), "platform-backups")

    provider.delete(created.id, created.outs)

    assert not bucket_exists(s3(), "platform-backups")


def test_delete_with_force_sends_versions_in_batches(aws, provider, monkeypatch):
    created = provider.create(props_for(force_destroy=True))
    put_versioned_objects(s3(), "platform-backups")  # four entries
    monkeypatch.setattr(bb, "DELETE_BATCH_SIZE", 3)  # stands in for S3's 1,000
    batch_sizes = []
    original = bb.make_s3_client

    def counting_client(props):
        client = original(props)
        client.meta.events.register(
            "provide-client-params.s3.DeleteObjects",
            lambda params, **_: batch_sizes.append(len(params["Delete"]["Objects"])),
        )
        return client

    monkeypatch.setattr(bb, "make_s3_client", counting_client)

    provider.delete(created.id, created.outs)

    assert batch_sizes == [3, 1]
    assert not bucket_exists(s3(), "platform-backups")


def test_delete_of_a_bucket_already_gone_succeeds(aws, provider):
    created = provider.create(props_for())
    s3().delete_bucket(Bucket="platform-backups")

    provider.delete(created.id, created.outs)  # must not raise: the goal is reached


def test_delete_access_denied_on_listing_is_explained(aws, provider, monkeypatch):
    created = provider.create(props_for())
    inject_error(monkeypatch, "ListObjectVersions", "AccessDenied", 403)

    with pytest.raises(BackupBucketError, match=r"ListObjectVersions on bucket 'platform-backups'.*s3:ListBucketVersions"):
        provider.delete(created.id, created.outs)
    assert bucket_exists(s3(), "platform-backups")


# ---------------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, reason", [
    ("ab", "3 to 63 characters"),
    ("a" * 64, "3 to 63 characters"),
    ("Platform-Backups", "lowercase letters"),
    ("platform_backups", "lowercase letters"),
    ("-platform", "begin and end with a letter or digit"),
    ("platform..backups", "two adjacent dots"),
    ("192.168.10.20", "IP address"),
    ("xn--platform", "reserved prefix"),
    ("platform-s3alias", "reserved suffix"),
    ("", "required"),
])
def test_check_rejects_bad_bucket_names(provider, name, reason):
    result = provider.check({}, props_for(name=name))

    assert [failure.property for failure in result.failures] != []
    assert all(failure.property == "bucket_name" for failure in result.failures)
    assert any(reason in failure.reason for failure in result.failures)


@pytest.mark.parametrize("days, reason", [
    (0, "at least 1"), (-5, "at least 1"), (1.5, "whole number"), ("30", "whole number"), (True, "whole number"),
])
def test_check_rejects_bad_retention(provider, days, reason):
    result = provider.check({}, props_for(retention_days=days))

    assert [(failure.property, reason in failure.reason) for failure in result.failures] == [("retention_days", True)]


def test_check_rejects_other_bad_settings_all_at_once(provider):
    news = props_for(sse="aws:des", kms_key_id="key", region="Europe", endpoint_url="minio:9000",
                     access_key_id="AKIAONLY")

    failed = sorted(failure.property for failure in provider.check({}, news).failures)

    # region is not judged when an endpoint is set (MinIO takes any region string).
    assert failed == ["endpoint_url", "kms_key_id", "secret_access_key", "sse"]


def test_check_judges_the_region_format_for_aws(provider):
    result = provider.check({}, props_for(region="Europe"))

    assert [failure.property for failure in result.failures] == ["region"]


def test_check_accepts_good_settings_and_normalises_numbers(provider):
    news = props_for(name="db.backups-01", retention_days=7.0, region="ap-southeast-2", sse="aws:kms",
                     kms_key_id="alias/backups", access_key_id="AKIA", secret_access_key="s")

    result = provider.check({}, news)

    assert result.failures == []
    assert result.inputs["retention_days"] == 7 and isinstance(result.inputs["retention_days"], int)


def test_check_leaves_unknown_preview_values_alone(provider):
    news = props_for(name=bb.UNKNOWN, retention_days=bb.UNKNOWN, sse=bb.UNKNOWN)

    assert provider.check({}, news).failures == []


# ---------------------------------------------------------------------------------------------------
# credentials
# ---------------------------------------------------------------------------------------------------


def test_client_uses_static_keys_when_given_and_the_default_chain_otherwise():
    static = bb.make_s3_client(props_for(access_key_id="AKIASTATIC", secret_access_key="static-secret"))
    default = bb.make_s3_client(props_for())

    assert static._request_signer._credentials.access_key == "AKIASTATIC"
    assert default._request_signer._credentials.access_key == "testing"  # from the environment


def test_provider_keeps_no_state_to_pickle():
    # Dynamic providers are pickled into the stack state: no client, no credentials on the object.
    provider = BackupBucketProvider()

    assert vars(provider) == {}
    assert isinstance(dill.loads(dill.dumps(provider, recurse=True)), BackupBucketProvider)


def test_serialized_provider_loads_in_a_fresh_process_from_the_project_dir():
    # The dynamic provider host (`python -m pulumi.dynamic`, started in the project directory) unpickles
    # the provider by reference to components.backup_bucket: it must import cleanly there.
    from pulumi.dynamic.dynamic import serialize_provider

    serialized = serialize_provider(BackupBucketProvider())
    script = (
        "import base64, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "print(type(provider).__name__, len(provider.check({}, {'bucket_name': 'ab'}).failures))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, serialized], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["BackupBucketProvider", "1"]


# ---------------------------------------------------------------------------------------------------
# server mode: the real HTTP path, as against MinIO
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        # The server shares moto's in-process state: reset it, then stop the thread.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
        server.stop()


def test_server_mode_create_read_delete_round_trip(moto_endpoint, provider):
    props = props_for(endpoint_url=moto_endpoint, region="eu-central-1",
                      access_key_id="AKIASTATIC", secret_access_key="static-secret")
    client = s3("eu-central-1", moto_endpoint)

    created = provider.create(props)
    assert client.get_bucket_versioning(Bucket="platform-backups")["Status"] == "Enabled"
    assert created.outs["endpoint_url"] == moto_endpoint

    client.put_bucket_versioning(Bucket="platform-backups", VersioningConfiguration={"Status": "Suspended"})
    read = provider.read(created.id, created.outs)
    assert read.outs["versioning"] == "Suspended"
    assert read.outs["access_key_id"] == "AKIASTATIC"  # kept so delete can use the same keys

    client.put_object(Bucket="platform-backups", Key="base/backup.tar", Body=b"backup")
    with pytest.raises(BackupBucketError, match="refusing to delete"):
        provider.delete(created.id, read.outs)

    provider.delete(created.id, {**read.outs, "force_destroy": True})
    assert not bucket_exists(client, "platform-backups")
    assert provider.read(created.id, read.outs).id == ""


def test_server_mode_tolerates_features_an_s3_compatible_endpoint_lacks(moto_endpoint, provider, monkeypatch):
    # MinIO answers NotImplemented for public-access-block and for the abort-uploads lifecycle action.
    inject_error(monkeypatch, "PutPublicAccessBlock", "NotImplemented", 501)
    inject_error(monkeypatch, "PutBucketLifecycleConfiguration", "NotImplemented", 501,
                 only_if_body_contains="AbortIncompleteMultipartUpload")
    inputs = props_for(endpoint_url=moto_endpoint)

    created = provider.create(inputs)

    assert created.outs["public_access_block"] == bb.UNSUPPORTED
    assert created.outs["abort_incomplete_upload_days"] == bb.UNSUPPORTED
    (rule,) = s3(endpoint_url=moto_endpoint).get_bucket_lifecycle_configuration(Bucket="platform-backups")["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert "AbortIncompleteMultipartUpload" not in rule
    assert provider.diff(created.id, created.outs, inputs).changes is False  # no perpetual diff


def test_aws_never_tolerates_a_missing_feature(aws, provider, monkeypatch):
    inject_error(monkeypatch, "PutPublicAccessBlock", "NotImplemented", 501)

    with pytest.raises(BackupBucketError, match="PutPublicAccessBlock on bucket 'platform-backups' failed: NotImplemented"):
        provider.create(props_for())
    assert not bucket_exists(s3(), "platform-backups")


# ---------------------------------------------------------------------------------------------------
# registration under Pulumi mocks
# ---------------------------------------------------------------------------------------------------


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.registered = []

    def new_resource(self, args):
        self.registered.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}


@pytest.fixture
def pulumi_mocks():
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="platform", stack="test", preview=False)
    yield mocks


def is_wrapped_secret(value):
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE_SIG


def test_backup_bucket_registers_settings_and_keeps_static_keys_secret(pulumi_mocks):
    settings = BucketSettings(bucket_name="platform-backups", region="eu-west-1", retention_days=14)

    @pulumi.runtime.test
    def program():
        bucket = bb.BackupBucket("backups", settings, access_key_id="AKIASTATIC",
                                 secret_access_key="static-secret-value")
        return bucket.urn

    program()

    (registered,) = pulumi_mocks.registered
    inputs = registered.inputs
    assert registered.typ == DYNAMIC_TYPE and registered.name == "backups"
    assert inputs["bucket_name"] == "platform-backups" and inputs["region"] == "eu-west-1"
    assert inputs["retention_days"] == 14 and inputs["force_destroy"] is False
    assert is_wrapped_secret(inputs["access_key_id"]) and inputs["access_key_id"]["value"] == "AKIASTATIC"
    assert is_wrapped_secret(inputs["secret_access_key"])
    # The serialized provider is secret, carries no credentials, and works when unpickled.
    assert is_wrapped_secret(inputs["__provider"])
    pickled = base64.b64decode(inputs["__provider"]["value"])
    assert b"static-secret-value" not in pickled
    revived = dill.loads(pickled)
    assert revived.check({}, settings.to_props()).failures == []


def test_backup_bucket_without_keys_registers_no_credentials(pulumi_mocks):
    @pulumi.runtime.test
    def program():
        return bb.BackupBucket("backups", BucketSettings(bucket_name="platform-backups")).urn

    program()

    (registered,) = pulumi_mocks.registered
    assert "access_key_id" not in registered.inputs and "secret_access_key" not in registered.inputs


def test_backup_bucket_rejects_bad_settings_while_the_program_runs(pulumi_mocks):
    with pytest.raises(ValueError, match=r"BackupBucket 'backups': bucket_name 'Bad_Name'.*retention_days must be at least 1"):
        bb.BackupBucket("backups", BucketSettings(bucket_name="Bad_Name", retention_days=0))
    assert pulumi_mocks.registered == []
