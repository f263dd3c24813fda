"""A real Neuroglancer in a real browser (DESIGN §4): the ``neuroglancer`` package's bundled
client served on 127.0.0.1, opened by headless Debian Chromium, driven from Python.

``ng`` (session) starts both once; ``ng.show(state, name)`` sets a viewer state, takes a
screenshot once Neuroglancer reports every visible chunk loaded (in a thread, with a timeout)
and returns it as an RGB array; the PNG is kept under ``tests/artifacts/`` for a person to
look at. ``serve(layers)`` serves file:// layers with ``igneous.serving.LayerServer`` (the
server `igneous view` uses). A missing Chromium or neuroglancer fails under CI, skips elsewhere.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

from tests.conftest import REPO
from tests.services.conftest import missing

ARTIFACTS = os.path.join(REPO, "tests", "artifacts")
SCREENSHOT_TIMEOUT = 90.0
WINDOW = (800, 600)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
]


def chromium_executable() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    missing("Chromium is not installed (apt-get install chromium; .ci/install-tools.sh does it)")


def chromium_command(user_data_dir, *extra: str) -> list:
    return [chromium_executable(), *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", *extra]


def save_artifact(name: str, png: bytes) -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, f"{name}.png")
    with open(path, "wb") as f:
        f.write(png)
    return path


def decode_png(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


class Neuroglancer:
    """One viewer and the browser showing it."""

    def __init__(self, neuroglancer, viewer, browser: subprocess.Popen, log_path: str, work):
        self.neuroglancer = neuroglancer
        self.viewer = viewer
        self.browser = browser
        self.log_path = log_path
        self.work = work
        # The same client, at a URL no browser keeps open: a page loaded from it with a state
        # after ``#!`` shows that state (as the demo app does) instead of the Python viewer's.
        self.client_viewer = neuroglancer.Viewer()  # the server holds viewers weakly: keep it
        self.client_url = self.client_viewer.get_viewer_url()

    def open_url(self, url: str, name: str, loaded=None, budget_ms: int = 15000) -> np.ndarray:
        """Load ``url`` in a fresh headless Chromium and screenshot the whole window.

        Unlike ``show`` this cannot wait for Neuroglancer to report its data loaded (the page is
        not driven from Python): Chromium's virtual time runs ``budget_ms`` of idle time after
        every fetch has finished, which is ample for local layers. ``loaded(shot)`` says whether
        the data is drawn; if not, the page is loaded once more with a longer budget (a loaded
        machine), and the test's own assertions judge the second picture.
        """
        shot = self._open_url(url, name, budget_ms)
        if loaded is not None and not loaded(shot):
            shot = self._open_url(url, name, budget_ms * 3)
        return shot

    def _open_url(self, url: str, name: str, budget_ms: int) -> np.ndarray:
        png_path = os.path.join(str(self.work), f"{name}.png")
        if os.path.exists(png_path):
            os.remove(png_path)
        cmd = chromium_command(
            self.work / f"profile-{name}-{budget_ms}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={png_path}",
            url,
        )
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=SCREENSHOT_TIMEOUT)
        assert os.path.exists(png_path), f"chromium wrote no screenshot ({proc.returncode}): {proc.stderr[-2000:]!r}"
        with open(png_path, "rb") as f:
            png = f.read()
        save_artifact(name, png)
        return decode_png(png)

    def show(self, state: dict, name: str, size=(256, 256)) -> np.ndarray:
        """Set ``state``, wait until its data is drawn, and return the screenshot (H×W×3 uint8)."""
        self.viewer.set_state(self.neuroglancer.ViewerState(state))
        png = self.screenshot(size)
        save_artifact(name, png)
        return decode_png(png)

    def screenshot(self, size) -> bytes:
        result: list = []
        failure: list = []

        def take():
            try:
                result.append(self.viewer.screenshot(size=list(size)).screenshot.image)
            except Exception as err:  # reported below, in the test's thread
                failure.append(err)

        thread = threading.Thread(target=take, daemon=True)
        thread.start()
        thread.join(SCREENSHOT_TIMEOUT)
        if failure:
            raise failure[0]
        if not result:
            alive = "running" if self.browser.poll() is None else f"exited {self.browser.returncode}"
            pytest.fail(
                f"no screenshot from Neuroglancer within {SCREENSHOT_TIMEOUT:.0f} s (chromium {alive}; "
                f"log {self.log_path})"
            )
        return result[0]


@pytest.fixture(scope="session")
def ng(tmp_path_factory):
    try:
        import neuroglancer
    except ImportError:
        missing("the neuroglancer package is not installed (pip install neuroglancer; make install-test does it)")
    work = tmp_path_factory.mktemp("chromium")
    neuroglancer.set_server_bind_address("127.0.0.1")
    viewer = neuroglancer.Viewer()
    log_path = str(work / "chromium.log")
    with open(log_path, "wb") as log:
        browser = subprocess.Popen(
            chromium_command(work / "profile", viewer.get_viewer_url()),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    session = Neuroglancer(neuroglancer, viewer, browser, log_path, work)
    try:
        yield session
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait(10)


@pytest.fixture
def serve():
    """Factory: ``serve({mount: cloudpath})`` → a started LayerServer, stopped after the test."""
    from igneous.serving import LayerServer

    servers = []

    def start(layers: dict):
        server = LayerServer(layers, port=0, public_host="127.0.0.1").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
