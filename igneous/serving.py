"""Serve layers to a Neuroglancer in a browser: a loopback HTTP server with CORS and byte ranges.

Neuroglancer fetches ``{url}/info``, chunk files by name and, for sharded scales and
multi-resolution meshes, byte ranges of one file. Layers on ``file://`` cannot be fetched by a
browser at all, and a layer on a cloud store can be proxied (``igneous view --indirect``), so
this server maps ``/{mount}/{path}`` to ``path`` inside each layer through CloudFiles, which
finds a chunk stored as ``name.gz``/``.br``/``.zstd`` when asked for ``name``.

A file stored gzip'd goes out as stored with ``Content-Encoding: gzip`` when the browser accepts
it (the browser inflates it); any other stored compression is decompressed here, since browsers
accept brotli and zstd only over https. Byte ranges are served as 206 responses. Only the
loopback interface is bound: the files of a layer are readable by whoever reaches the port.
"""

from __future__ import annotations

import logging
import posixpath
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Sequence
from urllib.parse import unquote, urlsplit

from cloudfiles import CloudFiles
from cloudfiles.compression import decompress

__all__ = ["LayerServer", "Request", "mount_names", "PORT_ATTEMPTS"]

log = logging.getLogger(__name__)

PORT_ATTEMPTS = 11  # the port asked for and the next 10 (SPEC §1.4 `view --port`)
RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Request:
    """One request the server answered: for logs and for tests that check what a viewer read."""

    method: str
    mount: str
    path: str
    status: int
    byte_range: Optional[tuple] = None


def mount_names(paths: Sequence[str]) -> list[str]:
    """A short, unique URL segment per layer: its last path component (``em``, ``em-2``, …)."""
    names: list[str] = []
    for path in paths:
        base = posixpath.basename(path.rstrip("/")) or "layer"
        base = re.sub(r"[^A-Za-z0-9._-]", "_", base)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


@dataclass
class _Layers:
    roots: dict  # mount -> cloudpath
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)


class _Handler(BaseHTTPRequestHandler):
    layers: _Layers  # set on the per-server subclass
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("%s %s", self.address_string(), format % args)

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "Content-Range, Content-Length, Content-Encoding")

    def do_OPTIONS(self):  # noqa: N802
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        # Chrome's Private Network Access: a public page (the demo viewer) may read loopback only
        # when the preflight says so.
        self.send_header("Access-Control-Allow-Private-Network", "true")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):  # noqa: N802
        self._serve(head=True)

    def do_GET(self):  # noqa: N802
        self._serve(head=False)

    def _resolve(self) -> tuple[Optional[str], str, str]:
        path = unquote(urlsplit(self.path).path).lstrip("/")
        mount, _, rest = path.partition("/")
        parts = rest.split("/")
        # only names inside the layer: no "..", no absolute or empty segments, no backslashes
        if any(p in ("", ".", "..") for p in parts) or "\\" in rest:
            return None, mount, rest
        return self.layers.roots.get(mount), mount, rest

    def _fail(self, status: int, mount: str, rest: str) -> None:
        self.layers.record(Request(self.command, mount, rest, status))
        body = f"{status}: /{mount}/{rest}\n".encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        root, mount, rest = self._resolve()
        if root is None or not rest:
            return self._fail(404, mount, rest)
        cf = CloudFiles(root, progress=False)
        wanted = self.headers.get("Range")
        try:
            if wanted:
                return self._serve_range(cf, mount, rest, wanted, head)
            [found] = cf.get([{"path": rest}], raw=True)
        except Exception as err:  # a store error is this request's failure, not the server's
            log.warning("serving %s/%s failed: %s", mount, rest, err)
            return self._fail(502, mount, rest)
        if found.get("error") is not None or found.get("content") is None:
            return self._fail(404, mount, rest)
        content, stored = found["content"], found.get("compress")
        accepted = {e.strip().split(";")[0] for e in (self.headers.get("Accept-Encoding") or "").split(",")}
        encoding = None
        if stored == "gzip" and "gzip" in accepted:
            encoding = "gzip"
        elif stored:
            content = decompress(content, stored, filename=rest)
        self.layers.record(Request(self.command, mount, rest, 200))
        self.send_response(200)
        self._cors()
        self.send_header("Content-Type", _content_type(rest))
        self.send_header("Accept-Ranges", "bytes")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if not head:
            self.wfile.write(content)

    def _serve_range(self, cf: CloudFiles, mount: str, rest: str, wanted: str, head: bool) -> None:
        match = RANGE_RE.match(wanted.strip())
        if match is None:
            return self._fail(416, mount, rest)
        size = cf.size(rest)
        if size is None:
            return self._fail(404, mount, rest)
        start = int(match.group(1))
        end = min(int(match.group(2)) + 1 if match.group(2) else size, size)  # exclusive
        [found] = cf.get([{"path": rest, "start": start, "end": end}], raw=True)
        content = found.get("content") or b""
        if found.get("compress"):  # stored compressed: a range of the bytes a browser would see
            content = decompress(cf.get([{"path": rest}], raw=True)[0]["content"], found["compress"], filename=rest)
            size = len(content)
            end = min(int(match.group(2)) + 1 if match.group(2) else size, size)
            content = content[start:end]
        if start >= end:
            return self._fail(416, mount, rest)
        self.layers.record(Request(self.command, mount, rest, 206, (start, end)))
        self.send_response(206)
        self._cors()
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if not head:
            self.wfile.write(content)


def _content_type(path: str) -> str:
    name = posixpath.basename(path)
    return (
        "application/json" if name in ("info", "provenance") or name.endswith(".json") else "application/octet-stream"
    )


class LayerServer:
    """Serve ``{mount: cloudpath}`` on ``host:port`` (or the next free of ``PORT_ATTEMPTS`` ports).

    ``start()`` serves from a background thread and returns at once; ``wait()`` blocks until
    Ctrl-C. ``url(mount)`` is the base URL Neuroglancer reads the layer from;
    ``requests`` lists what was served, for tests and diagnostics.
    """

    def __init__(self, layers: dict, port: int = 1337, host: str = "127.0.0.1", public_host: str = "localhost"):
        if not layers:
            raise ValueError("no layers to serve")
        self._layers = _Layers(dict(layers))
        handler = type("LayerHandler", (_Handler,), {"layers": self._layers})
        self.httpd = _bind(host, port, handler)
        self.port = int(self.httpd.server_address[1])
        self.public_host = public_host
        self._thread: Optional[threading.Thread] = None

    @property
    def requests(self) -> list:
        with self._layers.lock:
            return list(self._layers.requests)

    def clear_requests(self) -> None:
        with self._layers.lock:
            self._layers.requests.clear()

    def url(self, mount: str) -> str:
        return f"http://{self.public_host}:{self.port}/{mount}"

    def start(self) -> LayerServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="igneous-layer-server", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C raises KeyboardInterrupt here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> LayerServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a port another server holds must fail, so the next one is tried


def _bind(host: str, port: int, handler) -> _Server:
    last: Optional[OSError] = None
    for candidate in range(int(port), int(port) + PORT_ATTEMPTS):
        try:
            return _Server((host, candidate), handler)
        except OSError as err:  # in use (or not allowed): try the next one
            last = err
            log.info("port %d unavailable (%s); trying %d", candidate, err, candidate + 1)
    raise OSError(f"ports {port}-{int(port) + PORT_ATTEMPTS - 1} on {host} are all unavailable: {last}")
