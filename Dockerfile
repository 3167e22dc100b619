# The hub's one image: `hub worker`, `hub api` and `hub db migrate` all run
# from it (see docker-compose.yml). Configuration is HUB_* environment only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_DATA_DIR=/var/lib/hub

WORKDIR /app

# The pinned set first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

# Then the project itself, without touching the pinned dependencies.
COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /var/lib/hub --create-home hub \
    && rm -rf /app/build

# Worker state (HUB_DATA_DIR) lives here; compose mounts a volume on it.
USER hub
WORKDIR /var/lib/hub
EXPOSE 8080

ENTRYPOINT ["hub"]
CMD ["--help"]
