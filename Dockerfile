# Igneous worker image: runs `igneous execute` on the queue in $SQS_URL (see README, "Running on Kubernetes").
#   docker build -t ghcr.io/your-org/igneous:latest .
#   docker run --rm -e SQS_URL=sqs://my-queue -v ~/.cloudvolume/secrets:/home/igneous/.cloudvolume/secrets:ro \
#       ghcr.io/your-org/igneous:latest

# Stage 1: build a self-contained virtualenv. Every dependency ships manylinux wheels for CPython 3.11,
# so no compiler is needed; the source tree and pip's build leftovers stay in this stage.
FROM python:3.11.13-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first: this layer is reused as long as requirements.txt does not change.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN pip install --no-cache-dir .

# Stage 2: the runtime image: the same base, the virtualenv, an unprivileged user. Nothing else.
FROM python:3.11.13-slim-bookworm

# A fixed numeric UID/GID so that Kubernetes can check runAsNonRoot (deployment.yml uses the same ids).
# CloudVolume, CloudFiles and task-queue read credentials from $HOME/.cloudvolume/secrets (the Deployment
# mounts a Secret there) and create ~/.cloudvolume and ~/.cloudfiles on import, so HOME must be writable.
RUN groupadd --system --gid 10001 igneous \
    && useradd --system --no-log-init --uid 10001 --gid igneous --create-home --home-dir /home/igneous \
        --shell /usr/sbin/nologin igneous \
    && mkdir -p /home/igneous/.cloudvolume/secrets /home/igneous/.cloudfiles/secrets \
    && chown -R igneous:igneous /home/igneous

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/igneous \
    PYTHONUNBUFFERED=1 \
    SQS_REGION_NAME=us-east-1 \
    LEASE_SECONDS=600 \
    GRACE_SECONDS=90

USER 10001:10001
WORKDIR /home/igneous

# `exec` replaces the shell, so igneous is PID 1 and receives the SIGTERM that Kubernetes sends: the worker
# finishes the current task (at most $GRACE_SECONDS), otherwise releases it to the queue, then exits.
# The leading check refuses to start without a queue instead of draining some default path.
CMD ["sh", "-c", ": \"${SQS_URL:?set SQS_URL to the queue, e.g. sqs://my-queue}\"; exec igneous execute --lease-sec \"$LEASE_SECONDS\" --grace-sec \"$GRACE_SECONDS\" \"$SQS_URL\""]
