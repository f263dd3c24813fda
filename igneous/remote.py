"""Remote stores and queues (S3, GCS, SQS): credentials and reachability as one-line errors.

* :func:`explain` turns what boto3, google-auth and cloud-files raise for missing or
  refused credentials and unreachable endpoints into one sentence (or None for anything
  else), so the CLI can refuse with exit code 2 instead of printing a traceback.
* :func:`install` makes an AWS session token optional again: cloud-files reads
  ``AWS_SESSION_TOKEN`` whenever ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` are in
  the environment and fails with ``KeyError: 'AWS_SESSION_TOKEN'`` for plain long-lived
  keys, which need none.
* :func:`resolve_sqs` finds an SQS queue's URL within seconds or says why not. task-queue
  retries the lookup 4 times with up to 60 s waits, each with boto3's own retries, so an
  unreachable endpoint used to hang a worker for minutes.
"""

from __future__ import annotations

import logging
import os
from typing import Optional, Tuple

from igneous.errors import InvalidParameterError

__all__ = ["StoreUnavailableError", "explain", "install", "resolve_sqs", "sqs_client"]

log = logging.getLogger(__name__)

# A quick look-up: a refused or unroutable connection fails in seconds, not minutes.
PROBE_CONNECT_TIMEOUT = 3
PROBE_READ_TIMEOUT = 10
PROBE_ATTEMPTS = 2


class StoreUnavailableError(InvalidParameterError):
    """A remote store or queue cannot be used: no credentials, refused, unreachable, absent."""


def explain(err: BaseException) -> Optional[str]:
    """One sentence for a credential or connection failure; None when ``err`` is something else."""
    name = type(err).__name__
    module = type(err).__module__ or ""
    if isinstance(err, StoreUnavailableError):
        return str(err)
    if isinstance(err, KeyError) and err.args and str(err.args[0]).startswith("AWS_"):
        return f"incomplete AWS credentials: {err.args[0]} is not set"
    if module.startswith("botocore"):
        if name in ("NoCredentialsError", "PartialCredentialsError", "NoRegionError"):
            return f"AWS credentials missing: {err} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "\
                "or ~/.cloudvolume/secrets/aws-secret.json)"
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError",
                    "ProxyConnectionError", "SSLError"):
            return f"cannot reach the AWS endpoint: {err}"
        if isinstance(getattr(err, "response", None), dict):
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                        "UnrecognizedClientException", "ExpiredToken", "403"):
                return f"AWS refused the credentials: {code}: {err.response.get('Error', {}).get('Message', '')}"
    if module.startswith("google.auth") and name in ("DefaultCredentialsError", "RefreshError"):
        return f"Google Cloud credentials missing or refused: {err} (put them in "\
            "~/.cloudvolume/secrets/google-secret.json or set GOOGLE_APPLICATION_CREDENTIALS)"
    if module.startswith(("requests", "urllib3")) and "Connection" in name:
        return f"cannot reach the endpoint: {err}"
    return None


_installed = False


def install() -> None:
    """Let cloud-files use AWS keys from the environment without a session token (idempotent)."""
    global _installed
    if _installed:
        return
    from cloudfiles import connectionpools

    original = connectionpools.aws_credentials

    def aws_credentials(bucket="", service="aws", *args, **kwargs):
        try:
            return original(bucket, service, *args, **kwargs)
        except KeyError as err:
            if err.args != ("AWS_SESSION_TOKEN",):
                raise
            env = os.environ
            creds = {"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}
            if "AWS_DEFAULT_REGION" in env:
                creds["AWS_DEFAULT_REGION"] = env["AWS_DEFAULT_REGION"]
            return creds

    aws_credentials.__wrapped__ = original
    connectionpools.aws_credentials = aws_credentials
    _installed = True


def sqs_client(region_name: Optional[str], probe: bool = False):
    """A boto3 SQS client with task-queue's credentials (``~/.cloudvolume/secrets`` or the
    environment), the endpoint from ``SQS_ENDPOINT_URL`` or the standard AWS variables, and
    short time-outs and few retries when ``probe``."""
    import boto3
    from botocore.config import Config
    from taskqueue.secrets import aws_credentials

    creds = aws_credentials()
    kwargs = {"region_name": region_name or creds.get("AWS_DEFAULT_REGION") or "us-east-1"}
    if creds.get("AWS_ACCESS_KEY_ID"):
        kwargs["aws_access_key_id"] = creds.get("AWS_ACCESS_KEY_ID")
        kwargs["aws_secret_access_key"] = creds.get("AWS_SECRET_ACCESS_KEY")
        if creds.get("AWS_SESSION_TOKEN"):
            kwargs["aws_session_token"] = creds["AWS_SESSION_TOKEN"]
    endpoint = os.environ.get("SQS_ENDPOINT_URL")
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if probe:
        config = Config(
            connect_timeout=PROBE_CONNECT_TIMEOUT,
            read_timeout=PROBE_READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": PROBE_ATTEMPTS},
        )
    else:  # long polls wait 20 s; throttling and transient errors get boto3's standard back-off
        config = Config(connect_timeout=10, read_timeout=40, retries={"mode": "standard", "max_attempts": 10})
    return boto3.client("sqs", config=config, **kwargs)


def resolve_sqs(queue: str, region_name: Optional[str] = None) -> Tuple[str, str]:
    """``(queue name, queue URL)`` of ``sqs://NAME`` or an SQS URL, looked up in seconds.

    Raises :class:`StoreUnavailableError` with one line when there are no credentials, the
    endpoint cannot be reached, the credentials are refused or the queue does not exist.
    """
    if queue.startswith("sqs://"):
        name, url = queue[len("sqs://") :].strip("/"), None
    else:
        name, url = queue.rstrip("/").rsplit("/", 1)[-1], queue
    try:
        client = sqs_client(region_name, probe=True)
        if url is not None:  # a full URL (possibly another account's): check it answers
            client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            return name, url
        return name, client.get_queue_url(QueueName=name)["QueueUrl"]
    except StoreUnavailableError:
        raise
    except Exception as err:
        code = ""
        if isinstance(getattr(err, "response", None), dict):  # botocore ClientError and its modelled subclasses
            code = err.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" in code or code == "QueueDoesNotExist":
            raise StoreUnavailableError(
                f"no SQS queue named {name!r} (region {region_name or 'default'}); only commands that "
                "insert tasks create a queue"
            ) from None
        reason = explain(err)
        if reason is None:
            reason = f"{type(err).__name__}: {err}"
        raise StoreUnavailableError(f"SQS queue {queue}: {reason}") from None
