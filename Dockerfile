# Gnomon: scheduled Docker jobs with a Sundial-compatible API.
#
#   docker build -t gnomon .                      # on python:3.11-slim, from a registry
#   scripts/build-image gnomon                    # no registry: on a local Debian base
#   docker run -d --name gnomon -p 8080:8080 -v gnomon-data:/var/lib/gnomon \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -e GNOMON_API_TOKENS='ops:admin:<sha256 hex>' gnomon
#
# README.md ("Deploy") shows the host-network line and the compose file with PostgreSQL
# that scripts/smoke-image runs.
#
# `gnomon token create ops --scope admin` prints a token and its `ops:admin:...` entry.
# Beyond loopback Gnomon needs API tokens (or an explicit --insecure): without them it
# refuses to start. More than a few tokens: mount a file and set GNOMON_API_TOKENS_FILE.
#
# The service starts task containers through the host's Docker Engine, so it needs the
# engine's socket and membership of the socket's group (the --group-add above), not root.

# Any Debian 12 based image: python:3.11-slim, or gnomon-base:bookworm from
# scripts/build-base-image. Without Python, Debian's python3 (3.11) is installed.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 DEBIAN_FRONTEND=noninteractive
# Extra CA certificates of a network that intercepts HTTPS (scripts/build-image puts the
# host's there; the directory may be absent): pip must trust them to reach PyPI.
COPY setup.cfg extra-ca-certificates* /tmp/extra-ca/
RUN if ! command -v python3 >/dev/null; then \
        apt-get update -qq && \
        apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates \
            >/dev/null; \
    fi && \
    if ls /tmp/extra-ca/*.crt >/dev/null 2>&1; then \
        cp /tmp/extra-ca/*.crt /usr/local/share/ca-certificates/ && update-ca-certificates; \
    fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY app ./app
COPY definitions ./definitions
COPY scheduler ./scheduler
COPY executor ./executor
RUN python3 -m venv /opt/gnomon && /opt/gnomon/bin/pip install --quiet . && \
    /opt/gnomon/bin/pip uninstall --quiet --yes pip && \
    find /opt/gnomon -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE}
ENV PATH=/opt/gnomon/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GNOMON_DATABASE_URL=sqlite:////var/lib/gnomon/gnomon.db \
    GNOMON_HOST=0.0.0.0 \
    GNOMON_PORT=8080
RUN if ! command -v python3 >/dev/null; then \
        apt-get update -qq && \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3 >/dev/null && \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/*; \
    fi && \
    useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/gnomon gnomon
# Same base image and path in both stages, so the virtualenv's interpreter link stays valid.
COPY --from=build /opt/gnomon /opt/gnomon
USER gnomon
WORKDIR /var/lib/gnomon
VOLUME ["/var/lib/gnomon"]
EXPOSE 8080
# No curl in the image: ask with Python. A 503 (database or executor down) raises.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GNOMON_PORT', '8080') + '/_internal_/healthcheck', timeout=4)"]
# Listening on 0.0.0.0 inside the container is what makes -p work; hence the API tokens above.
# With --network host, -e GNOMON_HOST=127.0.0.1 keeps it on the host's loopback.
CMD ["gnomon", "serve"]
