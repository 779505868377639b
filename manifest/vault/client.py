"""An S3 client from boto3's standard configuration (environment, profiles, config files):
endpoint and credentials never come from sealbox's command line."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from manifest.vault.errors import VaultError, VaultUnreachable

if TYPE_CHECKING:
    from manifest.vault.location import VaultLocation

# Enough connections for the upload and hashing threads (push.WORKERS) without queueing.
MAX_POOL = 32
ENDPOINT_HINT = "set AWS_ENDPOINT_URL (or endpoint_url in your AWS profile) to the vault's S3 endpoint"
CREDENTIALS_HINT = (
    "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE"
)


def make_client(*, attempts: int = 3, read_timeout: float = 120) -> Any:
    """A boto3 S3 client. Path-style addressing for endpoints other than AWS's own (SeaweedFS,
    MinIO and Ceph name buckets in the path); `attempts` is botocore's standard retry budget."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise VaultError("no credentials for the vault", CREDENTIALS_HINT)
    endpoint = configured_endpoint(session)
    s3_config: dict[str, str] = {}
    if endpoint and not str(urlsplit(endpoint).hostname or "").endswith("amazonaws.com"):
        s3_config["addressing_style"] = "path"
    config = Config(
        region_name=session.region_name or "us-east-1",
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=MAX_POOL,
        s3=s3_config,
        # sealbox sends its own SHA-256 with every upload; no second (CRC) checksum is computed.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", config=config)


def configured_endpoint(session: Any) -> str | None:
    """The endpoint boto3 will use, read the way it reads it (service-specific variable first),
    without building a client (which costs a second): None means AWS itself."""
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(var):
            return os.environ[var]
    scoped = session._session.get_scoped_config()
    services = scoped.get("s3") if isinstance(scoped.get("s3"), dict) else {}
    value = services.get("endpoint_url") or scoped.get("endpoint_url")
    return str(value) if value else None


def endpoint_url(client: Any) -> str:
    return str(client.meta.endpoint_url)


def endpoint_host_port(client: Any | None = None) -> str:
    """The vault's endpoint as `host:port`, for the isolation standing channel: the host a
    contained machine must still reach to push evidence. Without a client, the endpoint boto3's
    standard configuration names (AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS S3)."""
    if client is None:
        import boto3

        session = boto3.session.Session()
        client = session.client("s3", region_name=session.region_name or "us-east-1")
    return host_port(endpoint_url(client))


def host_port(url: str) -> str:
    """`http(s)://HOST[:PORT][/...]` or `HOST:PORT` as `host:port` (`[v6]:port`); the scheme's
    port when none is given. ValueError when there is no host."""
    parts = urlsplit(url if "://" in url else f"//{url}")
    try:
        port = parts.port or (443 if parts.scheme in ("https", "") else 80)
    except ValueError as exc:
        raise ValueError(f"{url!r} has no valid port") from exc
    host = parts.hostname or ""
    if not host or parts.scheme not in ("http", "https", ""):
        raise ValueError(f"{url!r} is not an http(s) endpoint URL or HOST:PORT")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_unreachable(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, BotoConnectionError | HTTPClientError)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def raise_for(exc: BaseException, location: VaultLocation, doing: str, client: Any | None = None) -> NoReturn:
    """Turn a botocore error into one line naming the vault and the next step."""
    where = location.url
    if is_unreachable(exc):
        ep = endpoint_url(client) if client is not None else os.environ.get("AWS_ENDPOINT_URL", "?")
        raise VaultUnreachable(
            f"vault endpoint {ep} is unreachable while {doing} ({type(exc).__name__})", ENDPOINT_HINT
        ) from exc
    code, status = error_code(exc), http_status(exc)
    if code in ("NoSuchBucket",) or (status == 404 and doing.startswith("checking the bucket")):
        raise VaultError(
            f"vault bucket '{location.bucket}' does not exist",
            f"create it with `sealbox vault init --vault {where}`",
        ) from exc
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken") or (
        status == 403 and doing.startswith("checking the bucket")
    ):
        raise VaultError(
            f"the vault refused these credentials for {where} ({code or status})", CREDENTIALS_HINT
        ) from exc
    if code == "AccessDenied" or status == 403:
        raise VaultError(
            f"the vault denied {doing} in {where} (AccessDenied)", "these credentials lack the permission"
        ) from exc
    from botocore.exceptions import NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        raise VaultError("no credentials for the vault", CREDENTIALS_HINT) from exc
    raise VaultError(f"vault {where}: {doing} failed ({code or type(exc).__name__}: {exc})") from exc
