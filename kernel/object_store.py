"""Result artifacts in S3 (or any S3-compatible store): one bucket, a prefix per tenant."""

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kernel.settings import LOCAL_S3_CREDENTIALS, Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def tenant_prefix(tenant_id: str) -> str:
    return f"tenants/{tenant_id}/"


class ObjectStore:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
        if not (key_id and secret) and settings.runs_own_s3:
            key_id, secret = LOCAL_S3_CREDENTIALS
        self._client: S3Client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            region_name=settings.s3_region,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 5, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
        self._bucket_checked = False

    def ensure_bucket(self) -> None:
        if self._bucket_checked:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            self._client.create_bucket(Bucket=self.bucket)
        self._bucket_checked = True

    def put(self, key: str, body: bytes, content_type: str) -> str:
        """Stores ``body`` under ``key`` (overwriting: a re-run writes the same bytes); returns the key."""
        self.ensure_bucket()
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        return key

    def get(self, key: str) -> bytes:
        body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def presigned_url(self, key: str, expires_seconds: int = 900) -> str:
        """A link that downloads ``key`` without credentials until it expires."""
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
        )
        return url

    def keys(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def usage(self, prefix: str) -> tuple[int, int]:
        """How many objects, and how many bytes in all, are stored under ``prefix``."""
        paginator = self._client.get_paginator("list_objects_v2")
        sizes = [
            item["Size"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]
        return len(sizes), sum(sizes)
