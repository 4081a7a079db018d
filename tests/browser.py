"""A headless Chromium driven over the DevTools protocol, with the standard library only.

Chromium's ``--remote-debugging-pipe`` speaks the protocol over file descriptors 3
(commands in) and 4 (events and replies out), one JSON message per NUL-terminated
chunk: no websocket client, no Playwright, nothing to install but Debian's
``chromium`` package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    """The first Chromium-like browser on PATH, else None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, executable: str, *, width: int = 1280, height: int = 900, timeout: float = 60.0):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="churnguard-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire():  # the child's fds 3 and 4 are the protocol's pipe
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--window-size={width},{height}", f"--user-data-dir={self._profile}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # close_fds runs after preexec_fn: keep the two protocol fds it wired.
            preexec_fn=wire, pass_fds=(3, 4), close_fds=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 (closing anyway)
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        """Send one command and wait for its reply; events seen meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, path: Path, *, ready: str = "document.body && document.body.dataset.ready === 'true'") -> float:
        """Load a local file and wait until `ready` holds; returns the seconds it took."""
        started = time.monotonic()
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=True)
        deadline = started + self.timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(f"Boolean({ready})"):
                    return time.monotonic() - started
            except RuntimeError:
                pass  # the old document went away mid-evaluation
            time.sleep(0.02)
        raise TimeoutError(f"{path} was not ready after {self.timeout} s")

    def set_viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": mobile}, session=True)


def chromium_works(executable: str) -> str | None:
    """None when `executable` can start headless and answer the protocol, else why not."""
    try:
        with Browser(executable, timeout=30) as browser:
            return None if browser.evaluate("1 + 1") == 2 else "chromium evaluated 1 + 1 wrongly"
    except Exception as err:  # noqa: BLE001 (any failure to start is a reason to skip)
        return f"{type(err).__name__}: {err}"


def headless_page(what: str):
    """Yield a started `Browser`, or skip the test saying why `what` cannot be checked in one.

    The body of a pytest fixture: ``yield from headless_page("the report")``.
    """
    import pytest

    executable = find_chromium()
    if executable is None:
        pytest.skip(f"no chromium on PATH (apt-get install chromium); {what}'s browser test cannot run")
    why = chromium_works(executable)
    if why is not None:
        pytest.skip(f"chromium cannot run headless here: {why}")
    with Browser(executable) as page:
        yield page
