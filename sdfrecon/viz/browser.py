"""Open a local HTML file in headless Chromium and report what a reader's browser would: the
console's errors and warnings, every network request the page made, and a screenshot.

Talks the DevTools protocol over ``--remote-debugging-pipe`` (JSON messages ending in a NUL
byte on file descriptors 3 and 4), so it needs no websocket library. Used by the tests of
report.html and by ``make figures`` for the report's screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars")


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian: chromium), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageReport:
    """What loading a page produced: console/log messages (level, text), the URLs it
    requested (the page itself included) and the screenshot's PNG bytes."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""

    @property
    def errors(self) -> list[str]:
        return [text for level, text in self.messages if level in ("error", "assert")]


class _Pipe:
    def __init__(self, process: subprocess.Popen, write_fd: int, read_fd: int):
        self.process, self.write_fd, self.read_fd = process, write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.receive(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str, timeout: float) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.receive(deadline - time.monotonic())
            self.events.append(event)
            if event.get("method") == method:
                return
        raise TimeoutError(f"chromium sent no {method}")


def load_page(page: Path, width: int = 1280, height: int = 900, full_page: bool = True,
              executable: str | None = None, timeout: float = 60.0) -> PageReport:
    """Load the local file ``page`` in a fresh headless Chromium profile at width x height
    CSS pixels and return its console messages, requests and a PNG screenshot (of the
    whole page when full_page). Raises FileNotFoundError when no Chromium is installed."""
    executable = executable or find_chromium()
    if executable is None:
        raise FileNotFoundError("chromium is not installed")
    url = Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="sdfrecon-chromium-") as profile:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # the child's ends above 10, so that moving them onto 3 and 4 clobbers neither
        high_r, high_w = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        to_browser_r, from_browser_w = high_r, high_w

        def child_fds() -> None:  # the protocol's fixed descriptors: 3 in, 4 out
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_fds, pass_fds=(3, 4))
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(process, to_browser_w, from_browser_r)
        try:
            return _drive(pipe, url, width, height, full_page, timeout)
        finally:
            try:
                pipe.send("Browser.close", timeout=5)
            except (RuntimeError, TimeoutError, OSError):
                pass
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)


def _drive(pipe: _Pipe, url: str, width: int, height: int, full_page: bool, timeout: float) -> PageReport:
    target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
              "deviceScaleFactor": 1, "mobile": False}, session=session)
    pipe.events.clear()
    pipe.send("Page.navigate", {"url": url}, session=session)
    pipe.wait_for("Page.loadEventFired", timeout)
    time.sleep(0.3)  # late console messages
    shot = {"format": "png", "captureBeyondViewport": full_page}
    if full_page:
        size = pipe.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot["clip"] = {"x": 0, "y": 0, "width": width, "height": min(size["height"], 8000), "scale": 1}
    data = pipe.send("Page.captureScreenshot", shot, session=session, timeout=timeout)["data"]
    report = PageReport(screenshot=base64.b64decode(data))
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            report.messages.append(("error" if params.get("type") == "error" else params.get("type", ""), text))
        elif method == "Runtime.exceptionThrown":
            report.messages.append(("error", params.get("exceptionDetails", {}).get("text", "exception")))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            report.messages.append((entry.get("level", ""), f"{entry.get('text', '')} {entry.get('url', '')}".strip()))
        elif method == "Network.requestWillBeSent":
            report.requests.append(params.get("request", {}).get("url", ""))
    return report
