"""Headless Chromium driven over the DevTools protocol, standard library only.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol commands from its file
descriptor 3 and writes replies to 4, each a JSON message ended by a NUL byte. That is all a
test needs (open a page, read its text, click, take a screenshot) without Playwright,
Selenium or a driver binary. Every flag that would reach the network is off, and the resolver
answers nothing but 127.0.0.1, so a page can touch only loopback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",  # root in containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no DNS, nothing but loopback
    "--remote-debugging-pipe",
]


# Run argv[3:] with the pipe ends argv[1] and argv[2] as its fds 3 and 4 (where Chromium expects
# them); dup first, in case either already is 3 or 4. A shell cannot: dash takes fds 0-9 only.
_AT_FDS_3_AND_4 = """
import os, sys
read, write = (os.dup(int(fd)) for fd in sys.argv[1:3])
os.dup2(read, 3)
os.dup2(write, 4)
os.set_inheritable(3, True)  # dup2 onto itself keeps the close-on-exec flag of os.dup
os.set_inheritable(4, True)
os.execv(sys.argv[3], sys.argv[3:])
"""


def chromium_path() -> str | None:
    """The Chromium on this machine (Debian's ``chromium``), or ``None``."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class ProtocolError(RuntimeError):
    """Chromium answered a command with an error, or stopped answering."""


class Chromium:
    """One headless Chromium with a fresh profile; :meth:`close` ends it and removes the profile.

    Args:
        executable: the browser (see :func:`chromium_path`).
        timeout_s: how long one protocol command may take.
    """

    def __init__(self, executable: str, *, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="graft-hpo-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        argv = [executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"]
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _AT_FDS_3_AND_4, str(to_browser_r), str(from_browser_w), *argv],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._ready = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_browser, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:  # a reply; events are not needed
                    with self._ready:
                        self._replies[message["id"]] = message
                        self._ready.notify_all()
        with self._ready:
            self._ready.notify_all()  # the browser exited: wake any waiting command

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        """Run one protocol command and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        with self._ready:
            while self._next_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise ProtocolError(f"{method}: no reply (browser exit code {self._exit()})")
                self._ready.wait(left)
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise ProtocolError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _exit(self) -> int | None:
        return self._proc.poll()

    def new_page(self, width: int = 1600, height: int = 1000) -> Page:
        """A new tab of ``width`` x ``height`` CSS pixels."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        page.call("Page.enable")
        page.resize(width, height)
        return page

    def close(self) -> None:
        """End the browser (the process this object started) and remove its profile."""
        try:
            if self._proc.poll() is None:
                with contextlib.suppress(ProtocolError, OSError):
                    self.send("Browser.close")
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=10)
        finally:
            for fd in (self._to_browser, self._from_browser):
                with contextlib.suppress(OSError):
                    os.close(fd)
            shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    """One tab: navigate, read what it shows, click, take screenshots."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, self.session)

    def resize(self, width: int, height: int) -> None:
        """Show the page at ``width`` x ``height`` CSS pixels."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics)

    def goto(self, url: str) -> None:
        reply = self.call("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise ProtocolError(f"cannot open {url}: {reply['errorText']}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        reply = self.call("Runtime.evaluate", params)
        if "exceptionDetails" in reply:
            raise ProtocolError(f"{expression[:80]}: {reply['exceptionDetails'].get('text')}")
        return reply["result"].get("value")

    def text(self) -> str:
        """What the page shows, as text (``innerText`` of the body)."""
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def wait_for(self, ready: Callable[[], Any], *, what: str, timeout_s: float = 60.0) -> Any:
        """Poll ``ready`` until it returns something true; fail with the page's text."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = ready()
            if value:
                return value
            if time.monotonic() > deadline:
                url = self.evaluate("location.href")
                raise AssertionError(f"{what}: not shown after {timeout_s:.0f}s at {url}\n"
                                     f"--- page text:\n{self.text()[:3000]}")  # fmt: skip
            time.sleep(0.25)

    def wait_for_text(self, *needles: str, timeout_s: float = 60.0) -> str:
        """Wait until the page's text holds every one of ``needles``; return the text."""

        def shown() -> str | None:
            text = self.text()
            return text if all(n in text for n in needles) else None

        return str(self.wait_for(shown, what=f"text {needles!r}", timeout_s=timeout_s))

    def wait_for_selector(self, selector: str, *, timeout_s: float = 60.0) -> None:
        """Wait until an element matches the CSS ``selector``."""
        query = f"document.querySelector({json.dumps(selector)}) !== null"
        self.wait_for(lambda: self.evaluate(query), what=selector, timeout_s=timeout_s)

    def click(self, selector: str) -> None:
        """Click the first element matching the CSS ``selector``."""
        found = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.click(); return true; })()"
        )
        if not found:
            raise AssertionError(
                f"nothing matches {selector!r} at {self.evaluate('location.href')}"
            )

    def screenshot(self, path: Path) -> Path:
        """Save what the tab shows as a PNG."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
