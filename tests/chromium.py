"""Debian's headless Chromium, as the browser tests drive it (``.ci/run`` installs it when missing;
outside CI a browser test is skipped on a machine without it).

The flags are those this machine's closed network needs: without the background-networking ones,
Chromium's own connections are refused many at a time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def require_chromium() -> str:
    """The browser's path; skips the test without one, except in CI, where it fails."""
    if CHROMIUM is None and not os.environ.get("CI"):
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    assert CHROMIUM, "CI must provide chromium: .ci/run installs the Debian package"
    return CHROMIUM


def rendered(url: str, profile: Path, *, budget_ms: int = 20000, screenshot: Path | None = None) -> str:
    """The page's DOM once its scripts ran for ``budget_ms`` of virtual time (or, with
    ``screenshot``, a 1280x900 PNG of it written there, and ``""``)."""
    what = (
        [f"--screenshot={screenshot}", "--window-size=1280,900", "--hide-scrollbars"] if screenshot else ["--dump-dom"]
    )
    return subprocess.run(
        [require_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *what, url],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
