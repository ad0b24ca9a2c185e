"""The S3 (or S3-compatible, e.g. MinIO) bucket that holds database backups.

A Pulumi dynamic resource written with boto3: there is no AWS provider plugin in this project, and the
bucket needs only a handful of S3 calls. The bucket is always private, versioned and encrypted at rest.

Decisions worth knowing:

- An existing bucket is never adopted silently. Taking over a bucket would let this stack rewrite its
  settings and, on `pulumi destroy`, delete it with its backups. A bucket that already exists in your
  account fails the create with a message; adopt it deliberately for one run with
  ``pulumi.ResourceOptions(import_="<bucket name>")`` on the ``BackupBucket`` (``pulumi import`` on the CLI
  cannot name a dynamic provider), or choose another name.
- Lifecycle: noncurrent versions expire ``retention_days`` after they were replaced or deleted, and
  incomplete multipart uploads are aborted after 7 days. Current objects never expire by lifecycle: the
  backup tool (barman, driven by CloudNativePG) owns the retention of base backups and WAL, and expiring
  a base backup behind its back would break the WAL chain. Versioning turns any deletion (by barman, by
  a mistake or by an attacker) into a ``retention_days`` recovery window.
- Deleting a bucket that still holds any object version or delete marker is refused unless
  ``force_destroy`` is set. ``force_destroy`` lives in the resource state, so turning it on takes a
  ``pulumi up`` before the ``pulumi destroy``.
- Credentials are never stored on the provider object: dynamic providers are pickled (dill) into the
  stack state. dill pickles this class by reference, so the dynamic provider host (started in the
  project directory) imports ``components.backup_bucket``; importing it must stay free of side effects. Every method builds its own boto3 client, from the default credential chain (environment,
  profile, IAM role) unless static keys come in as (secret) inputs.
- S3-compatible endpoints (``endpoint_url`` set, e.g. MinIO) may answer ``NotImplemented`` for
  public-access-block and for the abort-incomplete-uploads lifecycle action. Only there, such a feature
  is recorded as ``UNSUPPORTED`` instead of failing; against AWS every feature is mandatory.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional
from urllib.parse import urlparse

import pulumi
import pulumi.dynamic as dynamic

# Property names shared by the inputs and the outputs of the resource.
BUCKET_NAME = "bucket_name"
REGION = "region"
ENDPOINT_URL = "endpoint_url"
RETENTION_DAYS = "retention_days"
SSE = "sse"
KMS_KEY_ID = "kms_key_id"
FORCE_DESTROY = "force_destroy"
ACCESS_KEY_ID = "access_key_id"
SECRET_ACCESS_KEY = "secret_access_key"
# Outputs only: what the bucket looks like.
ARN = "arn"
VERSIONING = "versioning"
PUBLIC_ACCESS_BLOCK = "public_access_block"
ABORT_INCOMPLETE_UPLOAD_DAYS = "abort_incomplete_upload_days"

# Changing where the bucket lives (or what it is called) is a new bucket, never an in-place update.
REPLACE_PROPERTIES = (BUCKET_NAME, REGION, ENDPOINT_URL)
# Properties that only live in the state (no S3 call), but still need an update to be recorded.
STATE_ONLY_PROPERTIES = (FORCE_DESTROY, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
CREDENTIAL_PROPERTIES = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)

DEFAULT_REGION = "us-east-1"
DEFAULT_RETENTION_DAYS = 30
ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 7
LIFECYCLE_RULE_ID = "platform-backup-retention"
SSE_ALGORITHMS = ("AES256", "aws:kms")
VERSIONING_ENABLED = "Enabled"
VERSIONING_NEVER_ENABLED = "Disabled"  # S3 reports no Status at all for a never-versioned bucket
UNSUPPORTED = "unsupported-by-endpoint"
DELETE_BATCH_SIZE = 1000  # DeleteObjects takes at most 1,000 keys per request

# The value Pulumi passes for inputs not known yet during a preview (pulumi.runtime.rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

# IAM action needed by each S3 API operation we call, to name it in AccessDenied messages.
IAM_ACTION_BY_OPERATION = {
    "HeadBucket": "s3:ListBucket",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "ListObjectVersions": "s3:ListBucketVersions",
    "DeleteObjects": "s3:DeleteObjectVersion",
}
ACCESS_DENIED_CODES = ("AccessDenied", "AllAccessDisabled", "403", "Forbidden")
NO_SUCH_BUCKET_CODES = ("NoSuchBucket", "404", "NotFound")
NOT_IMPLEMENTED_CODES = ("NotImplemented", "501")


class BackupBucketError(Exception):
    """A failure the user can act on; its message says what happened and what to do."""


# ---------------------------------------------------------------------------------------------------
# Settings and validation (no AWS, no Pulumi engine)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketSettings:
    """What the platform asks for. Plain values: they come from the validated stack config."""

    bucket_name: str
    region: str = DEFAULT_REGION
    endpoint_url: Optional[str] = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    sse: str = "AES256"
    kms_key_id: Optional[str] = None
    force_destroy: bool = False

    def to_props(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "BucketSettings":
        """Settings from resource properties (inputs or state), with numbers as they come off the wire."""
        return cls(
            bucket_name=props[BUCKET_NAME],
            region=props.get(REGION) or DEFAULT_REGION,
            endpoint_url=props.get(ENDPOINT_URL) or None,
            retention_days=_as_int(props.get(RETENTION_DAYS, DEFAULT_RETENTION_DAYS)),
            sse=props.get(SSE) or "AES256",
            kms_key_id=props.get(KMS_KEY_ID) or None,
            force_destroy=bool(props.get(FORCE_DESTROY, False)),
        )


def _as_int(value: Any) -> Any:
    """Pulumi sends every number as a float (30.0); leave anything else (unknowns, garbage) as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_unknown(value: Any) -> bool:
    return value == UNKNOWN


_BUCKET_NAME_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problems(name: Any) -> list[str]:
    """Why `name` is not a valid general-purpose S3 bucket name (empty list when it is)."""
    if not isinstance(name, str) or not name:
        return ["bucket_name is required and must be a string"]
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append(f"bucket_name {name!r} must be 3 to 63 characters long (it has {len(name)})")
    if not _BUCKET_NAME_CHARS.match(name):
        problems.append(
            f"bucket_name {name!r} may contain only lowercase letters, digits, dots and hyphens, "
            "and must begin and end with a letter or digit"
        )
    if ".." in name:
        problems.append(f"bucket_name {name!r} must not contain two adjacent dots")
    if _looks_like_ip_address(name):
        problems.append(f"bucket_name {name!r} must not be formatted as an IP address")
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            problems.append(f"bucket_name {name!r} must not start with the reserved prefix {prefix!r}")
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            problems.append(f"bucket_name {name!r} must not end with the reserved suffix {suffix!r}")
    return problems


def _looks_like_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
        return True
    except ValueError:
        return False


def settings_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    """Every problem with the given properties, as (property, reason). Unknown values are not judged."""
    problems: list[tuple[str, str]] = []

    def judge(prop: str, finder: Callable[[Any], list[str]]) -> None:
        value = props.get(prop)
        if not _is_unknown(value):
            problems.extend((prop, reason) for reason in finder(value))

    judge(BUCKET_NAME, bucket_name_problems)
    if not props.get(ENDPOINT_URL):  # S3-compatible servers (MinIO) accept any region string
        judge(REGION, _region_problems)
    judge(ENDPOINT_URL, _endpoint_problems)
    judge(RETENTION_DAYS, _retention_problems)
    judge(SSE, _sse_problems)
    if not _is_unknown(props.get(SSE)) and props.get(KMS_KEY_ID) and props.get(SSE) != "aws:kms":
        problems.append((KMS_KEY_ID, 'kms_key_id is only used with sse "aws:kms"; set sse to "aws:kms" or drop it'))
    judge(FORCE_DESTROY, lambda v: [] if v is None or isinstance(v, bool) else ["force_destroy must be true or false"])
    problems.extend(_credential_problems(props))
    return problems


def _region_problems(region: Any) -> list[str]:
    if region is None:
        return []
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", region):
        return [f"region {region!r} is not an AWS region name like 'eu-west-1'"]
    return []


def _endpoint_problems(endpoint: Any) -> list[str]:
    if endpoint is None:
        return []
    parsed = urlparse(endpoint) if isinstance(endpoint, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        return [f"endpoint_url {endpoint!r} must be an http(s) URL such as 'https://minio.example:9000'"]
    return []


def _retention_problems(days: Any) -> list[str]:
    days = _as_int(days)
    if days is None:
        return []
    if isinstance(days, bool) or not isinstance(days, int):
        return [f"retention_days must be a whole number of days, got {days!r}"]
    if days < 1:
        return [f"retention_days must be at least 1, got {days}"]
    return []


def _sse_problems(sse: Any) -> list[str]:
    if sse is None or sse in SSE_ALGORITHMS:
        return []
    return [f"sse must be one of {', '.join(SSE_ALGORITHMS)}, got {sse!r}"]


def _credential_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    given = {key: props.get(key) for key in CREDENTIAL_PROPERTIES}
    if any(_is_unknown(value) for value in given.values()):
        return []
    if bool(given[ACCESS_KEY_ID]) != bool(given[SECRET_ACCESS_KEY]):
        missing = ACCESS_KEY_ID if not given[ACCESS_KEY_ID] else SECRET_ACCESS_KEY
        return [(missing, "give both access_key_id and secret_access_key, or neither (to use the default credential chain)")]
    return []


# ---------------------------------------------------------------------------------------------------
# What the bucket should look like, and what it looks like
# ---------------------------------------------------------------------------------------------------


def desired_state(props: dict[str, Any]) -> dict[str, Any]:
    """The managed configuration implied by the inputs, in the same shape as observed_state()."""
    sse = props.get(SSE) or "AES256"
    return {
        VERSIONING: VERSIONING_ENABLED,
        SSE: sse,
        KMS_KEY_ID: (props.get(KMS_KEY_ID) or None) if sse == "aws:kms" else None,
        PUBLIC_ACCESS_BLOCK: True,
        RETENTION_DAYS: _as_int(props.get(RETENTION_DAYS, DEFAULT_RETENTION_DAYS)),
        ABORT_INCOMPLETE_UPLOAD_DAYS: ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS,
    }


def recorded_state(props: dict[str, Any]) -> dict[str, Any]:
    """The managed configuration as recorded in the state (outputs of create/update/read)."""
    return {key: _as_int(props.get(key)) for key in desired_state({})}


def identity(props: dict[str, Any]) -> dict[str, Any]:
    """Where the bucket is: name, region, endpoint, with defaults filled in."""
    return {
        BUCKET_NAME: props.get(BUCKET_NAME),
        REGION: props.get(REGION) or DEFAULT_REGION,
        ENDPOINT_URL: props.get(ENDPOINT_URL) or None,
    }


def properties_to_replace(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    old_identity, new_identity = identity(olds), identity(news)
    return [key for key in REPLACE_PROPERTIES if old_identity[key] != new_identity[key]]


def properties_to_update(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """Managed settings whose recorded value differs from the wanted one (drift included)."""
    recorded = recorded_state(olds)
    changed = [key for key, wanted in desired_state(news).items() if not _in_sync(recorded[key], wanted)]
    changed += [key for key in STATE_ONLY_PROPERTIES if _normalised(olds.get(key)) != _normalised(news.get(key))]
    return changed


def _in_sync(recorded: Any, wanted: Any) -> bool:
    # A feature the S3-compatible endpoint does not implement cannot drift.
    return recorded == UNSUPPORTED or recorded == wanted


def _normalised(value: Any) -> Any:
    # A missing force_destroy and an explicit false mean the same; so do a missing and an empty key.
    return value or None


def bucket_arn(bucket_name: str, region: str) -> str:
    partition = "aws"
    if region.startswith("cn-"):
        partition = "aws-cn"
    elif region.startswith("us-gov-"):
        partition = "aws-us-gov"
    return f"arn:{partition}:s3:::{bucket_name}"


def outputs(props: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Outputs = the inputs (so delete/read find credentials and force_destroy) + what the bucket is."""
    settings = BucketSettings.from_props(props)
    outs = {key: value for key, value in props.items() if not key.startswith("__")}
    outs.update(settings.to_props())
    outs.update(state)
    outs[ARN] = bucket_arn(settings.bucket_name, settings.region)
    return outs


# ---------------------------------------------------------------------------------------------------
# AWS calls (each takes a boto3 S3 client; no Pulumi here)
# ---------------------------------------------------------------------------------------------------


def make_s3_client(props: dict[str, Any]):
    """A fresh client per call: nothing about credentials is kept on the (pickled) provider."""
    import boto3
    from botocore.config import Config

    credentials = {}
    if props.get(ACCESS_KEY_ID):
        credentials = {
            "aws_access_key_id": props[ACCESS_KEY_ID],
            "aws_secret_access_key": props[SECRET_ACCESS_KEY],
        }
    # S3-compatible servers (MinIO) are usually reached by host and port: bucket names cannot be
    # prepended to such a host, so use path-style addressing there.
    addressing = {"addressing_style": "path"} if props.get(ENDPOINT_URL) else {}
    config = Config(s3=addressing, retries={"max_attempts": 5, "mode": "standard"})
    # A private Session, not boto3's shared default one: the dynamic provider serves calls from threads.
    session = boto3.session.Session(**credentials)
    return session.client(
        "s3",
        region_name=props.get(REGION) or DEFAULT_REGION,
        endpoint_url=props.get(ENDPOINT_URL) or None,
        config=config,
    )


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    if not code:
        code = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code


def explain_client_error(error: Exception, bucket: str) -> BackupBucketError:
    """Turn a botocore error into a message that says what failed and what to do about it."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(error, NoCredentialsError):
        return BackupBucketError(
            f"no AWS credentials found for bucket {bucket!r}: run with an IAM role, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment, or pass access_key_id and "
            "secret_access_key as Pulumi secrets"
        )
    if isinstance(error, EndpointConnectionError):
        return BackupBucketError(f"cannot reach the S3 endpoint for bucket {bucket!r}: {error}")
    if not isinstance(error, ClientError):
        return BackupBucketError(f"S3 request for bucket {bucket!r} failed: {error}")
    operation = error.operation_name
    code = _error_code(error)
    if code in ACCESS_DENIED_CODES:
        action = IAM_ACTION_BY_OPERATION.get(operation, f"s3:{operation}")
        return BackupBucketError(
            f"access denied: {operation} on bucket {bucket!r} was refused; the credentials in use "
            f"need the {action} permission on arn:aws:s3:::{bucket}"
        )
    if code == "BucketAlreadyExists":
        return BackupBucketError(
            f"bucket name {bucket!r} is already taken by another AWS account (S3 bucket names are "
            "global): choose another bucket_name"
        )
    if code == "BucketAlreadyOwnedByYou":
        return already_owned_error(bucket)
    message = error.response.get("Error", {}).get("Message", str(error))
    return BackupBucketError(f"{operation} on bucket {bucket!r} failed: {code}: {message}")


def already_owned_error(bucket: str) -> BackupBucketError:
    return BackupBucketError(
        f"bucket {bucket!r} already exists in your account but is not managed by this stack; refusing "
        "to adopt it silently (this stack would then rewrite its settings and could delete its "
        "backups). To manage it here, add pulumi.ResourceOptions(import_="
        f"{bucket!r}) to the BackupBucket for one `pulumi up`; otherwise choose another bucket_name"
    )


def bucket_exists(client, bucket: str) -> Optional[bool]:
    """True/False when S3 says so; None when it will not tell us (403: someone else's, or no permission)."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return True
    except ClientError as error:
        code = _error_code(error)
        if code in NO_SUCH_BUCKET_CODES:
            return False
        if code in ACCESS_DENIED_CODES:
            return None
        raise


def create_bucket(client, settings: BucketSettings) -> None:
    """Create the bucket itself; fail if it already exists, whoever owns it."""
    existed_before = bucket_exists(client, settings.bucket_name)
    request: dict[str, Any] = {"Bucket": settings.bucket_name}
    # us-east-1 is the one region that must NOT be named as a location constraint.
    if settings.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    client.create_bucket(**request)
    # In us-east-1, CreateBucket on a bucket you already own answers 200 (a no-op), so the
    # head request above is what tells us it was not ours to create.
    if existed_before:
        raise already_owned_error(settings.bucket_name)


def configure_bucket(client, settings: BucketSettings) -> dict[str, Any]:
    """Apply every managed setting (idempotent: also how drift is fixed). Returns what was applied."""
    name = settings.bucket_name
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": VERSIONING_ENABLED})
    client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=_encryption_config(settings))
    applied = desired_state(settings.to_props())
    applied[PUBLIC_ACCESS_BLOCK] = _block_public_access(client, settings)
    applied[ABORT_INCOMPLETE_UPLOAD_DAYS] = _put_lifecycle(client, settings)
    return applied


def _encryption_config(settings: BucketSettings) -> dict[str, Any]:
    default = {"SSEAlgorithm": settings.sse}
    if settings.sse == "aws:kms" and settings.kms_key_id:
        default["KMSMasterKeyID"] = settings.kms_key_id
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
    if settings.sse == "aws:kms":
        rule["BucketKeyEnabled"] = True  # fewer KMS requests, lower cost
    return {"Rules": [rule]}


def _block_public_access(client, settings: BucketSettings) -> Any:
    try:
        client.put_public_access_block(
            Bucket=settings.bucket_name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        return True
    except Exception as error:
        if _tolerated_as_unsupported(error, settings):
            return UNSUPPORTED
        raise


def _put_lifecycle(client, settings: BucketSettings) -> Any:
    try:
        client.put_bucket_lifecycle_configuration(
            Bucket=settings.bucket_name, LifecycleConfiguration=_lifecycle_config(settings, abort_uploads=True)
        )
        return ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS
    except Exception as error:
        if not _tolerated_as_unsupported(error, settings):
            raise
    # MinIO rejects AbortIncompleteMultipartUpload: keep the retention rule without it.
    client.put_bucket_lifecycle_configuration(
        Bucket=settings.bucket_name, LifecycleConfiguration=_lifecycle_config(settings, abort_uploads=False)
    )
    return UNSUPPORTED


def _lifecycle_config(settings: BucketSettings, abort_uploads: bool) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": settings.retention_days},
    }
    if abort_uploads:
        rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS}
    return {"Rules": [rule]}


def _tolerated_as_unsupported(error: Exception, settings: BucketSettings) -> bool:
    """Only a custom endpoint may lack a feature; against AWS every setting is mandatory."""
    return bool(settings.endpoint_url) and _error_code(error) in NOT_IMPLEMENTED_CODES


def observed_state(client, settings: BucketSettings) -> dict[str, Any]:
    """What the bucket actually looks like, in the shape of desired_state()."""
    name = settings.bucket_name
    versioning = client.get_bucket_versioning(Bucket=name).get("Status", VERSIONING_NEVER_ENABLED)
    sse, kms_key_id = _observed_encryption(client, name)
    retention_days, abort_days = _observed_lifecycle(client, settings)
    return {
        VERSIONING: versioning,
        SSE: sse,
        KMS_KEY_ID: kms_key_id,
        PUBLIC_ACCESS_BLOCK: _observed_public_access_block(client, settings),
        RETENTION_DAYS: retention_days,
        ABORT_INCOMPLETE_UPLOAD_DAYS: abort_days,
    }


def _get_or_none(call: Callable[[], dict], missing_code: str) -> Optional[dict]:
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as error:
        if _error_code(error) == missing_code:
            return None
        raise


def _observed_encryption(client, name: str) -> tuple[Optional[str], Optional[str]]:
    found = _get_or_none(
        lambda: client.get_bucket_encryption(Bucket=name), "ServerSideEncryptionConfigurationNotFoundError"
    )
    rules = (found or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if not rules:
        return None, None
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
    return default.get("SSEAlgorithm"), default.get("KMSMasterKeyID")


def _observed_public_access_block(client, settings: BucketSettings) -> Any:
    try:
        found = _get_or_none(
            lambda: client.get_public_access_block(Bucket=settings.bucket_name),
            "NoSuchPublicAccessBlockConfiguration",
        )
    except Exception as error:
        if _tolerated_as_unsupported(error, settings):
            return UNSUPPORTED
        raise
    flags = (found or {}).get("PublicAccessBlockConfiguration", {})
    wanted = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    return all(flags.get(flag) is True for flag in wanted)


def _observed_lifecycle(client, settings: BucketSettings) -> tuple[Optional[int], Any]:
    found = _get_or_none(
        lambda: client.get_bucket_lifecycle_configuration(Bucket=settings.bucket_name),
        "NoSuchLifecycleConfiguration",
    )
    ours = [rule for rule in (found or {}).get("Rules", []) if rule.get("ID") == LIFECYCLE_RULE_ID]
    if not ours or ours[0].get("Status") != "Enabled":
        return None, None
    retention = ours[0].get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
    abort = ours[0].get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation")
    if abort is None and settings.endpoint_url:
        abort = UNSUPPORTED  # we only ever leave it out where the endpoint refused it
    return retention, abort


def list_all_versions(client, bucket: str) -> list[dict[str, str]]:
    """Every object version and delete marker, as DeleteObjects wants them."""
    found = []
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            found.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
    return found


def delete_all_versions(client, bucket: str, versions: list[dict[str, str]]) -> None:
    for start in range(0, len(versions), DELETE_BATCH_SIZE):
        batch = versions[start : start + DELETE_BATCH_SIZE]
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise BackupBucketError(
                f"could not empty bucket {bucket!r}: {len(errors)} object version(s) were not deleted, "
                f"first {first.get('Key')!r}: {first.get('Code')}: {first.get('Message')} "
                "(object lock or a bucket policy may protect them)"
            )


def not_empty_error(bucket: str, versions: list[dict[str, str]]) -> BackupBucketError:
    example = versions[0]["Key"]
    return BackupBucketError(
        f"refusing to delete bucket {bucket!r}: it still holds {len(versions)} object version(s) or "
        f"delete marker(s) (for example {example!r}), which may be the only copy of your backups. "
        "Copy what you need, then either empty the bucket yourself or set force_destroy=True, "
        "run `pulumi up` to record it, and delete again"
    )


# ---------------------------------------------------------------------------------------------------
# The dynamic provider
# ---------------------------------------------------------------------------------------------------


def _user_facing(method):
    """Raise BackupBucketError (and only it) with a short traceback and no botocore chain attached."""

    def wrapper(self, *args):
        try:
            return method(self, *args)
        except BackupBucketError as error:
            failure = error
        except Exception as error:  # botocore errors: explained below
            from botocore.exceptions import BotoCoreError, ClientError

            if not isinstance(error, (ClientError, BotoCoreError)):
                raise
            failure = explain_client_error(error, _bucket_from_args(args))
        raise BackupBucketError(str(failure)) from None

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def _bucket_from_args(args: tuple) -> str:
    for arg in reversed(args):  # the newest properties come last
        if isinstance(arg, dict) and arg.get(BUCKET_NAME):
            return arg[BUCKET_NAME]
    return "?"


class BackupBucketProvider(dynamic.ResourceProvider):
    """CRUD for the backup bucket. Holds no attributes: it is pickled into the stack state."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = [dynamic.CheckFailure(prop, reason) for prop, reason in settings_problems(news)]
        inputs = dict(news)
        if RETENTION_DAYS in inputs:
            inputs[RETENTION_DAYS] = _as_int(inputs[RETENTION_DAYS])
        return dynamic.CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        replaces = properties_to_replace(olds, news)
        updates = properties_to_update(olds, news)
        same_name = BUCKET_NAME not in replaces
        return dynamic.DiffResult(
            changes=bool(replaces or updates),
            replaces=replaces,
            stables=[],
            # A bucket name is global: moving the same name elsewhere means deleting the old one first
            # (which is refused while it holds backups, unless force_destroy).
            delete_before_replace=bool(replaces) and same_name,
        )

    @_user_facing
    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        settings = BucketSettings.from_props(props)
        client = make_s3_client(props)
        create_bucket(client, settings)
        try:
            applied = configure_bucket(client, settings)
        except Exception:
            # Create must be all or nothing: remove the (empty) bucket we just made.
            _delete_quietly(client, settings.bucket_name)
            raise
        return dynamic.CreateResult(settings.bucket_name, outputs(props, applied))

    @_user_facing
    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        settings = BucketSettings.from_props({**props, BUCKET_NAME: id_})
        client = make_s3_client(props)
        if bucket_exists(client, id_) is False:
            # Gone out of band: an empty id tells Pulumi to drop it from the state.
            return dynamic.ReadResult("", {})
        return dynamic.ReadResult(id_, outputs({**props, BUCKET_NAME: id_}, observed_state(client, settings)))

    @_user_facing
    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        settings = BucketSettings.from_props(news)
        applied = configure_bucket(make_s3_client(news), settings)
        return dynamic.UpdateResult(outputs(news, applied))

    @_user_facing
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = make_s3_client(props)
        if bucket_exists(client, id_) is False:
            return  # already gone: nothing to do
        versions = list_all_versions(client, id_)
        if versions and not props.get(FORCE_DESTROY):
            raise not_empty_error(id_, versions)
        while versions:  # objects written while we were deleting show up in the next listing
            delete_all_versions(client, id_, versions)
            versions = list_all_versions(client, id_)
        client.delete_bucket(Bucket=id_)


def _delete_quietly(client, bucket: str) -> None:
    try:
        client.delete_bucket(Bucket=bucket)
    except Exception:  # the original error matters more than a failed clean-up
        pulumi.log.warn(f"could not remove bucket {bucket!r} after a failed create; delete it by hand")


# ---------------------------------------------------------------------------------------------------
# The resource
# ---------------------------------------------------------------------------------------------------


class BackupBucket(dynamic.Resource):
    """A private, versioned, encrypted bucket for database backups.

    Registers as type ``pulumi-python:dynamic:Resource`` (the SDK's default for dynamic resources;
    a custom type token would change every existing URN).

    Static keys are optional (the default credential chain is used without them) and are always
    registered as Pulumi secrets, so they are encrypted in the state and never shown.
    """

    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]
    region: pulumi.Output[str]
    endpoint_url: pulumi.Output[Optional[str]]

    def __init__(
        self,
        resource_name: str,
        settings: BucketSettings,
        access_key_id: Optional[pulumi.Input[str]] = None,
        secret_access_key: Optional[pulumi.Input[str]] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        props: dict[str, Any] = settings.to_props()
        _raise_on_problems(resource_name, props, access_key_id, secret_access_key)
        if access_key_id is not None:
            props[ACCESS_KEY_ID] = pulumi.Output.secret(access_key_id)
            props[SECRET_ACCESS_KEY] = pulumi.Output.secret(secret_access_key)
        props[ARN] = None  # computed by the provider
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=list(CREDENTIAL_PROPERTIES))
        super().__init__(
            BackupBucketProvider(), resource_name, props, pulumi.ResourceOptions.merge(secret_outputs, opts)
        )


def _raise_on_problems(resource_name: str, props: dict[str, Any], access_key_id: Any, secret_access_key: Any) -> None:
    """Fail while the program runs (all problems at once), not only when the engine calls check()."""
    problems = settings_problems(props)
    if (access_key_id is None) != (secret_access_key is None):
        problems.append((ACCESS_KEY_ID, "give both access_key_id and secret_access_key, or neither"))
    if problems:
        details = "; ".join(reason for _prop, reason in problems)
        raise ValueError(f"BackupBucket {resource_name!r}: {details}")
