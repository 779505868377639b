"""A vault bucket: versioning, Object Lock and a default retention; refused without Object Lock."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from manifest.errors import UsageError
from manifest.vault.client import error_code, http_status, is_unreachable, raise_for
from manifest.vault.errors import VaultError

if TYPE_CHECKING:
    from manifest.vault.location import VaultLocation

MODES = ("COMPLIANCE", "GOVERNANCE")
NO_LOCK_CODES = ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration")
_RETENTION = re.compile(r"(\d+)([dy])")
NO_LOCK_HINT = (
    "Object Lock can only be enabled when a bucket is created: make a new one with "
    "`sealbox vault init --vault s3://NEW-BUCKET`"
)


@dataclass(frozen=True)
class Retention:
    mode: str
    days: int

    def until(self, now: datetime | None = None) -> datetime:
        """Retain-until, whole seconds in UTC (what S3 stores)."""
        start = (now or datetime.now(UTC)).replace(microsecond=0)
        return start + timedelta(days=self.days)


def parse_retention(text: str, mode: str) -> Retention:
    """`7y` (365-day years) or `90d`; mode compliance|governance."""
    match = _RETENTION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"retention '{text}' is not a number of days or years", "e.g. --retention 7y or 90d")
    days = int(match.group(1)) * (365 if match.group(2) == "y" else 1)
    if days > 100 * 365:
        raise UsageError(f"retention '{text}' is over 100 years")
    upper = mode.upper()
    if upper not in MODES:
        raise UsageError(f"--mode '{mode}' is not compliance or governance")
    return Retention(upper, days)


def worm_policy(bucket: str) -> str:
    """A bucket policy that refuses deleting any object or version to everyone, the admin too: a
    delete marker hides evidence from a casual listing even when the versions stay."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "SealboxNoDelete",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                    "Resource": [f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


def check_bucket(client: Any, location: VaultLocation) -> dict[str, Any]:
    """The bucket exists, is reachable with these credentials, versioned and Object Locked.
    Returns its Object Lock configuration."""
    try:
        client.head_bucket(Bucket=location.bucket)
    except Exception as exc:
        raise_for(exc, location, "checking the bucket", client)
    try:
        config = client.get_object_lock_configuration(Bucket=location.bucket).get(
            "ObjectLockConfiguration", {}
        )
    except Exception as exc:
        if error_code(exc) not in NO_LOCK_CODES and http_status(exc) != 404:
            raise_for(exc, location, "reading the Object Lock configuration", client)
        config = {}
    if config.get("ObjectLockEnabled") != "Enabled":
        raise VaultError(
            f"vault bucket '{location.bucket}' has no Object Lock: evidence there could be deleted or "
            "overwritten, so sealbox will not use it",
            NO_LOCK_HINT,
        )
    return dict(config)


def init_bucket(
    client: Any, location: VaultLocation, retention: Retention, *, deny_delete: bool = True
) -> str:
    """Create the bucket with Object Lock (or check an existing one) and set its default retention
    and the no-delete policy. Returns what was done, in words."""
    created = False
    try:
        client.head_bucket(Bucket=location.bucket)
    except Exception as exc:
        if is_unreachable(exc) or http_status(exc) != 404:
            raise_for(exc, location, "checking the bucket", client)
        try:
            client.create_bucket(Bucket=location.bucket, ObjectLockEnabledForBucket=True)
        except Exception as create_exc:
            raise_for(create_exc, location, "creating the bucket", client)
        created = True
    check_bucket(client, location)
    try:
        versioning = client.get_bucket_versioning(Bucket=location.bucket).get("Status")
        if versioning != "Enabled":
            raise VaultError(f"vault bucket '{location.bucket}' is not versioned", NO_LOCK_HINT)
        client.put_object_lock_configuration(
            Bucket=location.bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": retention.mode, "Days": retention.days}},
            },
        )
        if deny_delete:
            client.put_bucket_policy(Bucket=location.bucket, Policy=worm_policy(location.bucket))
    except VaultError:
        raise
    except Exception as exc:
        raise_for(exc, location, "setting default retention and the no-delete policy", client)
    verb = "created" if created else "checked"
    return (
        f"{verb} {location.url}: versioning on, Object Lock on, default retention {retention.mode} "
        f"{retention.days} days" + (", deleting objects denied to everyone" if deny_delete else "")
    )
