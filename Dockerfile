# syntax=docker/dockerfile:1
# pushgate container image.
#   docker build -t pushgate:dev .
#   docker run --rm -p 8080:8080 -e PUSHGATE_SECRET_KEY=... -e PUSHGATE_REDIS_URL=redis://... pushgate:dev
#   docker run --rm ... pushgate:dev worker
# The same image runs the gateway (default command `serve`) and the worker (`worker`).

# ---- builder: resolve dependencies and install pushgate into a self-contained venv ----
FROM python:3.11.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Compilers only for dependencies without a wheel for this platform; never in the final image.
# Debian package versions are not pinned (DL3008): the pinned base tag fixes the release,
# and pinning exact versions breaks the build as soon as a security update supersedes them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that code changes reuse this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the package itself (.dockerignore keeps .git, venvs, tests, secrets and .env out).
COPY . .
RUN pip install --no-deps . \
 && python -m compileall -q /opt/venv/lib \
 && pushgate --help > /dev/null

# ---- runtime: the venv on a clean slim base, no compilers, non-root ----
FROM python:3.11.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="pushgate" \
      org.opencontainers.image.description="Push-notification login approval backend" \
      org.opencontainers.image.licenses="Apache-2.0"

# tini as PID 1 forwards SIGTERM to pushgate (which then drains) and reaps children.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pushgate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin pushgate

COPY --from=builder /opt/venv /opt/venv

# Settings come from the environment (Kubernetes ConfigMap/Secret); the working directory
# is empty so no stray .env file is ever read.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PUSHGATE_HOST=0.0.0.0 \
    PUSHGATE_PORT=8080
WORKDIR /app

USER 10001:10001
EXPOSE 8080

# Liveness for plain Docker (Kubernetes uses its own probes), Python stdlib only: the image
# has no curl. Healthy when /healthz answers 2xx on the gateway port (`serve`) or on the
# worker's metrics port (`worker`); nothing else listens in the container.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request\ndef ok(port):\n    try:\n        urllib.request.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=2)\n    except OSError:\n        return False\n    return True\nports = (os.environ.get('PUSHGATE_PORT', '8080'), os.environ.get('PUSHGATE_WORKER_METRICS_PORT', '9091'))\nsys.exit(0 if any(ok(p) for p in ports) else 1)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "pushgate"]
CMD ["serve"]
