# syntax=docker/dockerfile:1
# alertfeat: docker build -t alertfeat . ; docker run --read-only --tmpfs /tmp alertfeat
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY schemas ./schemas
COPY benchmarks ./benchmarks
# [catalogs] brings pyarrow, which HATS catalogs read in place (xmatch_hats) need.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[catalogs]"

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    ALERTFEAT_DATA_DIR=/opt/alertfeat/data \
    MALLOC_TRIM_THRESHOLD_=2000000000 \
    MALLOC_TOP_PAD_=268435456
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin alertfeat
COPY --from=build /wheels /wheels
WORKDIR /opt/alertfeat
# Compile every numba kernel and import the default catalogs now, so a new pod's first alert
# pays neither. The cache is copied to the writable /tmp at start (the root filesystem is
# read-only), which keeps the compiled code valid.
RUN pip install --no-cache-dir /wheels/*.whl \
 && rm -rf /wheels \
 && NUMBA_CACHE_DIR=/opt/alertfeat/numba-cache python -c "from alertfeat.config import load_settings; from alertfeat.app import build_pipeline; build_pipeline(load_settings(redis_url=''), offline=True)" \
 && chown -R 10001:10001 /opt/alertfeat
COPY --chmod=755 scripts/container-entrypoint /usr/local/bin/container-entrypoint
USER 10001
EXPOSE 9108
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["container-entrypoint"]
CMD ["alertfeat", "run"]
