# Gnomon: scheduled Docker jobs with a Sundial-compatible API.
#
#   docker build -t gnomon .
#   docker run -p 8080:8080 -v gnomon-data:/var/lib/gnomon \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -e GNOMON_API_TOKENS='ops:admin:<sha256 hex>' gnomon
#
# `gnomon token create ops --scope admin` prints a token and its `ops:admin:...` entry.
# Beyond loopback Gnomon needs API tokens (or an explicit --insecure): without them it
# refuses to start. More than a few tokens: mount a file and set GNOMON_API_TOKENS_FILE.
#
# The service starts task containers through the host's Docker Engine, so it needs the
# engine's socket and membership of the socket's group (the --group-add above), not root.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY app ./app
COPY definitions ./definitions
COPY scheduler ./scheduler
COPY executor ./executor
RUN python -m venv /opt/gnomon && /opt/gnomon/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/gnomon/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GNOMON_DATABASE_URL=sqlite:////var/lib/gnomon/gnomon.db \
    GNOMON_PORT=8080
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/gnomon gnomon
# Same base image and path in both stages, so the virtualenv's interpreter link stays valid.
COPY --from=build /opt/gnomon /opt/gnomon
USER gnomon
WORKDIR /var/lib/gnomon
VOLUME ["/var/lib/gnomon"]
EXPOSE 8080
# No curl in the slim image: ask with Python. A 503 (database or executor down) raises.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GNOMON_PORT', '8080') + '/_internal_/healthcheck', timeout=4)"]
# Listening on 0.0.0.0 inside the container is what makes -p work; hence the API tokens above.
CMD ["gnomon", "serve", "--host", "0.0.0.0"]
