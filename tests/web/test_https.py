"""HTTPS and WSS behind Debian's nginx, configured with deploy/nginx.conf.

nginx ends TLS with a self-signed certificate this test makes, in front of one real
`roomler serve`. Chromium reaches it as `roomler.test` (mapped to 127.0.0.1 by its host
resolver, so the name is not a loopback name Chromium would trust anyway): two people
sign in over https://, chat over wss://, and the camera and microphone open because the
page is a secure context (and a call shows each the other's video); the same client over
plain http:// to that name gets no `navigator.mediaDevices` at all. The same in front of
two nodes in cluster mode: tests/cluster/test_https.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.async_api import Browser, WebSocket, async_playwright, expect

from tests.web.conftest import StartServer
from tests.web.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    STEP_MS,
    BrowserUser,
    free_port,
)
from tests.web.test_call import assert_video_plays

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOST = "roomler.test"
SITE_CONFIG = REPO / "deploy" / "nginx.conf"
NGINX_START_TIMEOUT = 15.0


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for HOST (and 127.0.0.1), valid for a day; its file and its key's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def site_config(
    upstream_ports: list[int], http_port: int, https_port: int, cert: Path, key: Path
) -> str:
    """deploy/nginx.conf with this test's name, ports and certificate, on loopback only."""
    text = SITE_CONFIG.read_text()
    servers = "\n    ".join(f"server 127.0.0.1:{port};" for port in upstream_ports)
    replacements = {
        "server 127.0.0.1:3000;": servers,
        "    listen [::]:80;\n": "",
        "    listen [::]:443 ssl;\n": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "server_name chat.example.com;": f"server_name {HOST};",
        "/etc/letsencrypt/live/chat.example.com/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/chat.example.com/privkey.pem": str(key),
        "/var/log/nginx/roomler.access.log": str(cert.parent / "roomler.access.log"),
    }
    for old, new in replacements.items():
        assert old in text, f"deploy/nginx.conf no longer has {old!r}: update this test"
        text = text.replace(old, new)
    return text


def main_config(prefix: Path, site: Path) -> str:
    """The top-level nginx.conf Debian would have, pointed at a private prefix."""
    temp = " ".join(
        f"{kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read this test's files
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n  access_log {prefix / 'access.log'};\n  {temp}\n  include {site};\n}}\n"
    )


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + NGINX_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nginx did not listen on {port}:\n{log.read_text()[-3000:]}")


class Nginx:
    """nginx in front of the Roomler nodes on `upstream_ports`, under `prefix`."""

    def __init__(self, prefix: Path, upstream_ports: list[int], https_port: int) -> None:
        self.prefix = prefix
        self.upstream_ports = upstream_ports
        self.http_port, self.https_port = free_port(), https_port
        self.base = f"https://{HOST}:{https_port}"
        cert, key = self_signed_certificate(prefix)
        site = prefix / "roomler.conf"
        site.write_text(site_config(upstream_ports, self.http_port, https_port, cert, key))
        (prefix / "nginx.conf").write_text(main_config(prefix, site))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, nginx: str) -> None:
        log = self.prefix / "error.log"
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.prefix), "-e", str(log), "-c", str(self.prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.https_port, self.process, log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def wait_for_log(self, wanted: str) -> str:
        """The access log once it holds `wanted`."""
        path = self.prefix / "roomler.access.log"
        deadline = time.monotonic() + NGINX_START_TIMEOUT
        while wanted not in (text := path.read_text(errors="replace")):
            if time.monotonic() > deadline:
                raise AssertionError(f"{wanted!r} is not in nginx's access log:\n{text[-3000:]}")
            time.sleep(0.1)
        return text


@pytest.fixture
def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.skip(
            "!!!!! nginx is missing: the HTTPS test is SKIPPED (`make browser` installs it) !!!!!"
        )
    return found


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    """Chromium resolving HOST to 127.0.0.1; certificate errors are ignored per context."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"!!!!! {CHROMIUM} is missing: the HTTPS browser test is SKIPPED !!!!!")
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"]
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        try:
            yield launched
        finally:
            await launched.close()


@contextmanager
def nginx_in_front_of(
    nginx: str, prefix: Path, ports: list[int], https_port: int
) -> Iterator[Nginx]:
    prefix.mkdir()
    proxy = Nginx(prefix, ports, https_port)
    proxy.start(nginx)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def site(nginx_binary: str, start_server: StartServer, tmp_path: Path) -> Iterator[Nginx]:
    https_port = free_port()
    # The public URL is the production setting that names the origin browsers use.
    server = start_server({"ROOMLER__APP__PUBLIC_URL": f"https://{HOST}:{https_port}"})
    with nginx_in_front_of(nginx_binary, tmp_path / "nginx", [server.port], https_port) as proxy:
        yield proxy


async def open_user(browser: Browser, name: str, username: str) -> BrowserUser:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800}, reduced_motion="reduce", ignore_https_errors=True
    )
    context.set_default_timeout(STEP_MS)
    page = await context.new_page()
    user = BrowserUser(name, username, context, page)
    user.watch(page)
    return user


async def test_sign_in_chat_call_and_camera_over_https_and_wss(
    site: Nginx, browser: Browser
) -> None:
    # Plain HTTP is redirected to HTTPS.
    redirect = httpx.get(f"http://127.0.0.1:{site.http_port}/login", headers={"Host": HOST})
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"https://{HOST}/login"

    users = await chat_and_call_over_https(site, browser)
    alice = users[0]

    # A secure context: the camera and microphone open (Chromium's fake devices).
    assert await alice.page.evaluate("window.isSecureContext") is True
    tracks = await alice.page.evaluate(
        """async () => {
            const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
            const kinds = stream.getTracks().map((t) => t.kind).sort();
            stream.getTracks().forEach((t) => t.stop());
            return kinds;
        }"""
    )
    assert tracks == ["audio", "video"]

    # The same name over plain HTTP (straight to Roomler) is no secure context: no camera.
    plain = await open_user(browser, "Plain", "plain")
    users.append(plain)
    await plain.page.goto(f"http://{HOST}:{site.upstream_ports[0]}/")
    assert await plain.page.evaluate("window.isSecureContext") is False
    assert await plain.page.evaluate("typeof navigator.mediaDevices") == "undefined"
    await close_all(users)

    # nginx logs a WebSocket when it ends (now): the upgrade, without the client's token.
    access = site.wait_for_log('"GET /ws HTTP/1.1" 101')
    assert "token" not in access and "eyJ" not in access


async def chat_and_call_over_https(site: Nginx, browser: Browser) -> list[BrowserUser]:
    """Alice and Bob sign up, chat over wss:// and see each other's video; [alice, bob]."""
    alice = await open_user(browser, "Alice", "alice")
    bob = await open_user(browser, "Bob", "bob")
    sockets: list[WebSocket] = []
    for user in (alice, bob):
        user.page.on("websocket", lambda socket: sockets.append(socket))
    await bob.sign_up(site.base)
    await alice.sign_up(site.base)
    await alice.create_workspace("Acme")
    await alice.add_member("bob")
    await bob.open_workspace_and_join("Acme", "general")
    await alice.send("Hello over wss")
    await expect(bob.messages("Hello over wss")).to_have_count(1)
    await bob.send("Loud and clear")
    await expect(alice.messages("Loud and clear")).to_have_count(1)
    assert sockets and all(s.url.startswith(f"wss://{HOST}:{site.https_port}/ws") for s in sockets)

    # A call: signaling over wss://, media straight to the SFU's UDP ports.
    await alice.page.get_by_role("button", name="Start call").click()
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_video_plays(alice, "bob")
    await assert_video_plays(bob, "alice")
    return [alice, bob]


async def close_all(users: list[BrowserUser]) -> None:
    """Close every context; the test fails on any console error the pages logged."""
    errors = [f"{u.username}: {e}" for u in users for e in u.errors]
    for user in users:
        await user.context.close()
    assert not errors, errors
