# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY schemas ./schemas
COPY benchmarks ./benchmarks
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/opt/alertfeat/numba-cache
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin alertfeat
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && mkdir -p "$NUMBA_CACHE_DIR" \
 && python -c "from alertfeat.features import warm_up; warm_up()" \
 && chown -R 10001:10001 /opt/alertfeat
USER 10001
WORKDIR /opt/alertfeat
EXPOSE 9108
CMD ["alertfeat", "run"]
