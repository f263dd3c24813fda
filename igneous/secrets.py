"""Environment defaults (SPEC §1.1). Credentials themselves come from CloudVolume and
task-queue secrets (``~/.cloudvolume/secrets/…``)."""

from __future__ import annotations

import os

__all__ = ["SQS_URL", "SQS_REGION_NAME", "SQS_ENDPOINT_URL", "LEASE_SECONDS"]

SQS_URL = os.environ.get("SQS_URL", None)
SQS_REGION_NAME = os.environ.get("SQS_REGION_NAME", "us-east-1")
SQS_ENDPOINT_URL = os.environ.get("SQS_ENDPOINT_URL", None)
LEASE_SECONDS = int(os.environ.get("LEASE_SECONDS", 600))
