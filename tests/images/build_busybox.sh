#!/bin/sh
# Build the tiny local test image gnomon-test/busybox:latest (idempotent).
#
# FROM scratch plus Debian's static busybox, so tests never need a registry.
# Where busybox-static is absent but the engine can pull, retag busybox:latest.
set -eu

IMAGE="${GNOMON_TEST_IMAGE:-gnomon-test/busybox:latest}"
BUSYBOX="${BUSYBOX_BIN:-/bin/busybox}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE already present"
    exit 0
fi

# Debian's dynamic busybox would not run in an empty image: require a static one.
if [ -x "$BUSYBOX" ] && LC_ALL=C ldd "$BUSYBOX" 2>&1 | grep -q 'not a dynamic executable'; then
    context=$(mktemp -d)
    trap 'rm -rf "$context"' EXIT
    cp "$BUSYBOX" "$context/busybox"
    cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/usr/bin", "/sbin", "/usr/sbin"]
RUN ["/bin/busybox", "chmod", "1777", "/tmp"]
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin
DOCKERFILE
    DOCKER_BUILDKIT=0 docker build --quiet --tag "$IMAGE" "$context" >/dev/null
    echo "$IMAGE built from $BUSYBOX"
    exit 0
fi

echo "no static busybox at $BUSYBOX; pulling busybox:latest" >&2
docker pull busybox:latest
docker tag busybox:latest "$IMAGE"
echo "$IMAGE tagged from busybox:latest"
