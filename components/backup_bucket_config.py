"""The `backups` stack config key: the bucket components.backup_bucket.BackupBucket makes, shared by the databases."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from components.config_base import CONFIG_KEY, IAM_ROLE_ARN, CamelModel

class BackupCredentials(CamelModel):
    """How the database pods reach the bucket: an IAM role (preferred) or static keys held in secret config."""

    iam_role: bool = False
    role_arn: Optional[str] = Field(default=None, pattern=IAM_ROLE_ARN)  # IRSA: annotates the pods' ServiceAccount
    access_key_id_key: Optional[str] = Field(default=None, pattern=CONFIG_KEY)  # names of secret config keys
    secret_access_key_key: Optional[str] = Field(default=None, pattern=CONFIG_KEY)

    @model_validator(mode="after")
    def one_kind_of_credentials(self) -> "BackupCredentials":
        keys = (self.access_key_id_key, self.secret_access_key_key)
        if self.role_arn and not self.iam_role:
            raise ValueError("'roleArn' is only used with 'iamRole: true'; set iamRole: true or drop roleArn")
        if self.iam_role and any(keys):
            raise ValueError("use either 'iamRole: true' or the static key names, not both")
        if not self.iam_role and not all(keys):
            raise ValueError(
                "set 'iamRole: true' (with 'roleArn' for IRSA), or both 'accessKeyIdKey' and 'secretAccessKeyKey' "
                "(names of secret config keys, set with `pulumi config set --secret`)"
            )
        return self

    @property
    def static_keys(self) -> bool:
        return not self.iam_role


class BackupsConfig(CamelModel):
    """The stack's backup bucket (S3 or S3-compatible), shared by its databases, each under its own path."""

    bucket: str
    region: str = "us-east-1"
    endpoint: Optional[str] = Field(default=None, pattern=r"^https?://[^/\s]+/?$")  # as the database pods reach it
    admin_endpoint: Optional[str] = Field(default=None, pattern=r"^https?://[^/\s]+/?$")  # as `pulumi up` reaches it
    retention_days: int = Field(default=30, ge=1, le=3650)
    compression: Literal["gzip", "bzip2", "lz4", "snappy"] = "gzip"
    encryption: Literal["AES256", "aws:kms"] = "AES256"
    credentials: BackupCredentials

    @field_validator("bucket")
    @classmethod
    def valid_bucket_name(cls, bucket: str) -> str:
        from components.backup_bucket import bucket_name_problems  # the bucket's own rules, in one place

        problems = bucket_name_problems(bucket)
        if problems:
            raise ValueError("; ".join(problems).replace("bucket_name ", "bucket "))
        return bucket

    @model_validator(mode="after")
    def aws_region_without_endpoint(self) -> "BackupsConfig":
        # Without an endpoint the bucket is on AWS, which knows only its own region names (MinIO takes any).
        if self.endpoint is None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", self.region):
            raise ValueError(f"region '{self.region}' is not an AWS region name like 'eu-west-1'")
        return self

    @model_validator(mode="after")
    def irsa_only_on_aws(self) -> "BackupsConfig":
        # With an endpoint the database pods' only way out is to that store: they cannot reach STS to trade the IRSA
        # token for credentials, so the backups would fail at run time.
        if self.endpoint is not None and self.credentials.role_arn:
            raise ValueError(
                "credentials.roleArn (IRSA) needs the database pods to reach AWS STS, but with 'endpoint' their only way "
                "out is that store; use static keys (accessKeyIdKey, secretAccessKeyKey) for a store outside AWS, or drop "
                "'endpoint' for S3"
            )
        return self
