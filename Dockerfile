# The hub's one image: `hub worker`, `hub api` and `hub db migrate` all run
# from it (see docker-compose.yml). Configuration is HUB_* environment only.
#
# The base image is pinned by digest (the multi-arch index of python:3.11-slim),
# so a rebuild gets the same bytes. To move to a newer one (docs/operations.md):
#   docker buildx imagetools inspect python:3.11-slim   # "Digest: sha256:..."
# and replace the digest below.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_DATA_DIR=/var/lib/hub

WORKDIR /app

# The runtime set first (no test tools, no embedded broker or PostgreSQL), every
# file checked against its hash: this layer is rebuilt only when the lock changes.
COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements-runtime.lock

# Then the project itself, without touching the pinned dependencies.
COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /var/lib/hub --create-home hub \
    && rm -rf /app/build

# Worker state (HUB_DATA_DIR) lives here; compose mounts a volume on it.
USER hub
WORKDIR /var/lib/hub
# 8080: the API (and its /metrics); 9100: a worker's /metrics (HUB_WORKER_METRICS_PORT).
EXPOSE 8080 9100

ENTRYPOINT ["hub"]
CMD ["--help"]
