# motcua: one image serving the API, the web pages and the background worker.
# Build: docker build -t motcua .   Run: docker run -p 5000:5000 -v motcua-var:/app/var motcua
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MOTCUA_HOST=0.0.0.0 MOTCUA_PORT=5000 MOTCUA_VAR=/app/var
WORKDIR /app

# Node is needed only at build time, to bundle the modeller's and pages' JavaScript from the npm registry.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make nodejs npm \
 && rm -rf /var/lib/apt/lists/*

COPY setup.cfg pyproject.toml README.md package.json package-lock.json Makefile ./
COPY engine engine
COPY api api
COPY forms forms
COPY cli cli
# The bundle lands in api/web/static/dist/ before the package is installed, so it ships with it.
RUN make web && pip install . && rm -rf node_modules
COPY bpmn bpmn

RUN useradd --create-home motcua && mkdir -p /app/var && chown -R motcua /app/var
USER motcua
EXPOSE 5000
HEALTHCHECK CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:5000/healthz').status != 200)"
# Migrate, deploy the procedure library, then serve (waitress) with the huey worker beside it.
CMD ["sh", "-c", "motcua db upgrade && motcua deploy bpmn/ && motcua serve"]
