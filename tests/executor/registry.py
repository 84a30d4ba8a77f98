"""A minimal Docker registry on 127.0.0.1 (the v2 API's read side) serving one image.

The engine treats registries on 127.0.0.0/8 as insecure, so it pulls over
plain HTTP from here. The image is taken from the engine with `docker save`;
every repository name and tag this registry is asked for is that image.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_blobs(saved: bytes) -> tuple[bytes, dict[str, bytes]]:
    """A v2 manifest and its blobs by digest, from a `docker save` archive of one image."""
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:

        def read(name: str) -> bytes:
            member = archive.extractfile(name)
            assert member is not None, name
            return member.read()

        (entry,) = json.loads(read("manifest.json"))
        config = read(entry["Config"])
        layers = [gzip.compress(read(name), compresslevel=1) for name in entry["Layers"]]
    blobs = {_digest(blob): blob for blob in (config, *layers)}
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": _digest(config)},
        "layers": [
            {"mediaType": LAYER_TYPE, "size": len(layer), "digest": _digest(layer)}
            for layer in layers
        ],
    }
    return json.dumps(manifest).encode(), blobs


class _Handler(http.server.BaseHTTPRequestHandler):
    manifest: bytes = b""
    blobs: dict[str, bytes] = {}
    asked: list[str] = []  # the path of every manifest request, in order

    def do_HEAD(self) -> None:
        """Headers of what GET would answer."""
        self._answer(send_body=False)

    def do_GET(self) -> None:
        """The API root, a manifest, or a blob."""
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        body, content_type = self._lookup()
        if body is None:
            self.send_response(404)
            body, content_type = b'{"errors": [{"code": "NAME_UNKNOWN"}]}', "application/json"
        else:
            self.send_response(200)
            self.send_header("Docker-Content-Digest", _digest(body))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _lookup(self) -> tuple[bytes | None, str]:
        path = self.path.split("?")[0]
        if path == "/v2/":
            return b"{}", "application/json"
        if "/manifests/" in path:
            self.asked.append(path)
            return self.manifest, MANIFEST_TYPE
        if "/blobs/" in path:
            return self.blobs.get(path.rsplit("/", 1)[1]), "application/octet-stream"
        return None, "application/json"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def serve_image(saved: bytes, asked: list[str] | None = None) -> Iterator[str]:
    """Serve the saved image on a free loopback port; yields the registry's `host:port`.

    Each manifest request's path is appended to `asked`, when given.
    """
    manifest, blobs = image_blobs(saved)
    fields = {"manifest": manifest, "blobs": blobs, "asked": [] if asked is None else asked}
    handler = type("Handler", (_Handler,), fields)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
