"""Files in the web client (issue 18 item 6): attached by button, paste and drag-and-drop,
an image shown inline from its server-made thumbnail, a file as a download card, a
refused size said out loud, and a deleted message taking its files along -- two people in
their own browsers; and a direct conversation's files, which a third member of the
workspace cannot fetch."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.async_api import Page, expect

from tests.web.conftest import NewUser, StartServer
from tests.web.harness import BrowserUser, ServerProcess, access_token, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIMIT = 1_000_000


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (230, 120, 20)).save(out, "PNG")
    return out.getvalue()


async def give_files(
    page: Page, event: str, target: str, files: list[tuple[str, str, bytes]]
) -> None:
    """Dispatch a `paste` or `drop` carrying `files` on the element `target`, as the
    browser does when a person pastes or drops them."""
    payload = [{"name": n, "type": t, "data": base64.b64encode(d).decode()} for n, t, d in files]
    await page.evaluate(
        """([event, target, files]) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, { type: f.type }));
            }
            const element = document.querySelector(target);
            const options = { bubbles: true, cancelable: true };
            if (event === 'paste') {
                const paste = { ...options, clipboardData: transfer };
                element.dispatchEvent(new ClipboardEvent('paste', paste));
            } else {
                const drag = { ...options, dataTransfer: transfer };
                element.dispatchEvent(new DragEvent('dragover', drag));
                element.dispatchEvent(new DragEvent('drop', drag));
            }
        }""",
        [event, target, payload],
    )


async def test_files_by_button_paste_and_drop_reach_the_other_browser(
    start_server: StartServer, new_user: NewUser, tmp_path: Path
) -> None:
    server = start_server({"ROOMLER__FILES__MAX_BYTES": str(LIMIT)})
    alice, bob = await alice_and_bob_in_general(server, new_user)
    page = alice.page
    picture = png_bytes()
    # By the attach button (the file picker), by pasting into the box, by dropping on it.
    await page.get_by_test_id("file-input").set_input_files(
        files=[{"name": "whiteboard.png", "mimeType": "image/png", "buffer": picture}]
    )
    await give_files(page, "paste", "#composer-input", [("notes.txt", "text/plain", b"agenda\n")])
    await give_files(page, "drop", "form.composer", [("budget.csv", "text/csv", b"a,b\n1,2\n")])
    uploads = page.get_by_role("list", name="Files to send")
    await expect(uploads.locator(".upload-done")).to_have_count(3)
    await expect(uploads).to_contain_text("whiteboard.png")
    # One withdrawn before sending never reaches anyone.
    await uploads.get_by_role("button", name="Remove budget.csv").click()
    await expect(uploads.locator(".upload")).to_have_count(2)
    await alice.send("Plan for Monday")

    message = bob.page.locator(".message").filter(has=bob.messages("Plan for Monday"))
    image = message.locator(".attachment-image img")
    await expect(image).to_have_attribute("alt", "whiteboard.png")
    # The thumbnail, made by the server, is what the page shows: 360 wide.
    loaded = "(img) => img.complete && img.naturalWidth === 360"
    await bob.page.wait_for_function(loaded, arg=await image.element_handle())
    card = message.locator(".attachment-card")
    await expect(card).to_have_count(1)
    await expect(card).to_contain_text("notes.txt")
    await expect(message).not_to_contain_text("budget.csv")
    async with bob.page.expect_download() as waiting:
        await card.get_by_role("button", name="Download notes.txt").click()
    download = await waiting.value
    assert download.suggested_filename == "notes.txt"
    saved = tmp_path / "notes.txt"
    await download.save_as(saved)
    assert saved.read_bytes() == b"agenda\n"
    await bob.screenshot("files", "attachments", readme="files")

    # Too large: refused by the server, said in the composer, nothing sent.
    alice.allowed.append(re.compile(r"status of 413"))
    await page.get_by_test_id("file-input").set_input_files(
        files=[
            {
                "name": "huge.bin",
                "mimeType": "application/octet-stream",
                "buffer": b"x" * (LIMIT + 1),
            }
        ]
    )
    refused = uploads.locator(".upload.failed")
    await expect(refused).to_contain_text(f"file: must be at most {LIMIT} bytes")
    await uploads.get_by_role("button", name="Remove huge.bin").click()
    await expect(uploads).to_have_count(0)

    assert bob.errors == []


async def attach(user: BrowserUser, name: str, mime: str, data: bytes) -> dict[str, str]:
    """Attach one file by the composer's button; the server's answer (its URLs)."""
    page = user.page
    async with page.expect_response(
        lambda r: r.request.method == "POST" and f"/file?name={name}" in r.url
    ) as answer:
        await page.get_by_test_id("file-input").set_input_files(
            files=[{"name": name, "mimeType": mime, "buffer": data}]
        )
    response = await answer.value
    assert response.status == 201, await response.text()
    stored: dict[str, str] = await response.json()
    return stored


async def expect_thumbnail_shown(user: BrowserUser, text: str, name: str) -> None:
    """The message's image, from the server's thumbnail, loaded in the user's page."""
    message = user.page.locator(".message").filter(has=user.messages(text))
    image = message.locator(".attachment-image img")
    await expect(image).to_have_attribute("alt", name)
    loaded = "(img) => img.complete && img.naturalWidth > 0"
    await user.page.wait_for_function(loaded, arg=await image.element_handle())


async def test_a_direct_conversation_with_a_file_and_an_image(
    server: ServerProcess, new_user: NewUser, tmp_path: Path
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    carol = await new_user("Carol", "carol")
    await carol.sign_up(server.base)
    await alice.add_member("carol")
    # Alice writes to Bob from his card in the member list.
    await alice.member("bob").get_by_role("button", name="Bob").click()
    await alice.page.get_by_role("dialog", name="Bob").get_by_role("button", name="Message").click()
    await expect(alice.channel_heading("Bob")).to_be_visible()

    report = bytes(range(256)) * 64  # not text, not an image: a download card
    image = await attach(alice, "whiteboard.png", "image/png", png_bytes())
    card_file = await attach(alice, "report.bin", "application/octet-stream", report)
    uploads = alice.page.get_by_role("list", name="Files to send")
    await expect(uploads.locator(".upload-done")).to_have_count(2)
    await alice.send("The board and the numbers")

    await bob.page.locator(".direct-list").get_by_role("link", name="Alice").click()
    await expect(bob.channel_heading("Alice")).to_be_visible()
    for user in (alice, bob):
        await expect_thumbnail_shown(user, "The board and the numbers", "whiteboard.png")
    message = bob.page.locator(".message").filter(has=bob.messages("The board and the numbers"))
    card = message.locator(".attachment-card")
    await expect(card).to_contain_text("report.bin")
    async with bob.page.expect_download() as waiting:
        await card.get_by_role("button", name="Download report.bin").click()
    saved = tmp_path / "report.bin"
    await (await waiting.value).save_as(saved)
    assert saved.read_bytes() == report

    # Carol, in the workspace but not in the conversation, gets neither file; Bob does.
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:

        async def status(user: BrowserUser, url: str) -> int:
            headers = {"Authorization": f"Bearer {await access_token(user)}"}
            return (await client.get(url, headers=headers)).status_code

        for url in (image["url"], image["thumbnail_url"], card_file["url"]):
            assert await status(bob, url) == 200, url
            assert await status(carol, url) in (403, 404), url
