"""Debian's firefox-esr, headless and without a driver, for the SFU browser tests.

Playwright drives only its own patched Firefox builds, so the page is opened by
starting the browser on its URL; it runs on its own (entry.js ``autostart``) and
reports to the signaling server over HTTP.  The profile's preferences make a
loopback-only call possible: fake camera, capture allowed without asking, and
``media.navigator.permission.fake`` so that a page that captured may gather every
host address (without it Firefox offers only its default-route address, which it
never pairs with the SFU's 127.0.0.1), loopback candidates included.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FIREFOX = "/usr/bin/firefox-esr"
EXIT_TIMEOUT = 10.0

PREFERENCES = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.navigator.permission.fake": True,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.default_address_only": False,
    # Nothing but the test page on the network.
    "app.update.enabled": False,
    "app.normandy.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "extensions.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.startup.max_resumed_crashes": -1,
}


def _user_js(preferences: dict[str, bool | int | str]) -> str:
    def value(v: bool | int | str) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v) if isinstance(v, int) else f'"{v}"'

    return "".join(f'user_pref("{k}", {value(v)});\n' for k, v in preferences.items())


@contextmanager
def firefox_page(url: str, profile: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Firefox on ``url`` in a fresh ``profile`` directory; stopped (its whole
    process group, which it started) on exit."""
    if not Path(FIREFOX).exists():
        pytest.skip(
            f"!!!!! {FIREFOX} is missing: the Firefox browser test is SKIPPED "
            "(`make browser` installs Debian's firefox-esr) !!!!!"
        )
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "user.js").write_text(_user_js(PREFERENCES))
    log = (profile / "firefox.log").open("wb")
    process = subprocess.Popen(
        [FIREFOX, "--headless", "--no-remote", "--profile", str(profile), url],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MOZ_HEADLESS": "1", "HOME": str(profile)},
        start_new_session=True,
    )
    try:
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(EXIT_TIMEOUT)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(EXIT_TIMEOUT)
        log.close()
