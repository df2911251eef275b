# The opsmetrics application image: `opsmetrics worker|topics|simulate|ingest`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:${PATH}"

RUN pip install --no-cache-dir uv==0.13.8 \
    && useradd --create-home --uid 10001 ops

WORKDIR /app
# Dependencies first (cached layer), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY opsmetrics ./opsmetrics
COPY services ./services
COPY streams ./streams
COPY stack ./stack
COPY config ./config
COPY alertmanager/render.py alertmanager/alertmanager.yml.tmpl ./alertmanager/
RUN uv sync --frozen --no-dev \
    && mkdir -p /app/.run /app/.cache && chown -R ops:ops /app/.run /app/.cache

USER ops
ENV OPS_DATA_DIR=/app/.run OPS_CACHE_DIR=/app/.cache OPS_LOG_FORMAT=json
EXPOSE 6066 8080
ENTRYPOINT ["opsmetrics"]
CMD ["--help"]
