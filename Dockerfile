# motcua: one image for the API processes, the web pages and the background workers (docs/operations.md).
# Build: docker build -t motcua .
# Alone: docker run -p 5000:5000 -v motcua-var:/app/var motcua      (SQLite, gunicorn, worker beside it)
# A province: docker compose up (compose.yaml: PostgreSQL, Redis, 2 API processes, 2 workers, nginx)

# -- stage 1: build the web bundle and the wheels (Node and compilers never reach the runtime image) -------
FROM python:3.11-slim AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends make nodejs npm \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json Makefile ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY setup.cfg pyproject.toml README.md ./
COPY engine engine
COPY api api
COPY forms forms
COPY cli cli
# The bundle lands in api/web/static/dist/ before the wheel is built, so it ships inside the package.
RUN npm run --silent build && pip wheel --wheel-dir /wheels .

# -- stage 2: the runtime, as an unprivileged user ---------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MOTCUA_HOST=0.0.0.0 MOTCUA_PORT=5000 MOTCUA_VAR=/app/var MOTCUA_LOG_FORMAT=json
RUN groupadd --system --gid 10001 motcua \
 && useradd --system --uid 10001 --gid motcua --home-dir /app --shell /usr/sbin/nologin motcua
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels motcua && rm -rf /wheels
COPY bpmn bpmn
RUN mkdir -p /app/var && chown -R motcua:motcua /app/var
USER 10001:10001
EXPOSE 5000
VOLUME ["/app/var"]
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=2).status != 200)"
# Alone: migrate, register the agencies the samples name (bpmn/agencies.csv), deploy the procedure library, then serve (gunicorn, one process) with the huey worker beside it.
# compose.yaml overrides the command per service (migrate, api, worker).
CMD ["sh", "-c", "motcua db upgrade && motcua agencies import bpmn/agencies.csv && motcua deploy bpmn/ && motcua serve"]
