"""Profiles in the app (issue 18 item 11): Alice changes her name, time zone and picture
from the user menu and Bob's open page shows them at once, in the timeline, in the
member list and on her card there (her local time); then she changes her password and
signs in with the new one."""

from __future__ import annotations

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from playwright.async_api import Locator, expect

from tests.web.conftest import NewUser
from tests.web.harness import PASSWORD, ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser]

NEW_PASSWORD = "a brand new secret"
# Half an hour off every whole-hour zone: the machine's or the browser's own time would
# not pass for it.
ZONE = "Australia/Adelaide"


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def expect_picture(avatar: Locator, user_id: str) -> None:
    """An <img> of the user's uploaded picture, and the browser could load it."""
    await expect(avatar).to_be_visible()
    src = await avatar.get_attribute("src")
    assert src is not None and src.startswith(f"/api/user/{user_id}/avatar/"), src
    handle = await avatar.element_handle()
    await avatar.page.wait_for_function(
        "img => img.complete && img.naturalWidth === 256", arg=handle
    )


def minutes_of_day(shown: str) -> int:
    """'14:05', '02:05 PM' or '2:05 pm' as minutes since midnight."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?:\s*([AaPp])\.?\s*[Mm]\.?)?", shown.strip())
    assert match is not None, f"not a time: {shown!r}"
    hour, minute, half = int(match[1]), int(match[2]), match[3]
    if half is not None:
        hour = hour % 12 + (12 if half in "Pp" else 0)
    return hour * 60 + minute


def minutes_now(zone: str) -> int:
    now = datetime.now(ZoneInfo(zone))
    return now.hour * 60 + now.minute


async def expect_local_time(shown: Locator, zone: str) -> None:
    """The time `shown` is the time now in `zone` (the minute before or after the read,
    should a minute turn meanwhile)."""
    before = minutes_now(zone)
    text = await shown.inner_text()
    after = minutes_now(zone)
    assert minutes_of_day(text) in {before, after}, f"{text!r} is not the time in {zone}"


async def test_a_new_name_and_picture_show_live_and_a_new_password_signs_in(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.send("Hello from Alice")
    bob_sees = bob.page.locator("li.message").filter(has=bob.messages("Hello from Alice"))
    await expect(bob_sees.locator(".author")).to_have_text("Alice")
    await expect(bob.member("alice").locator(".member-name")).to_have_text("Alice")
    alice_id: str = await alice.page.evaluate(
        "JSON.parse(localStorage.getItem('roomler.session')).user.id"
    )

    await alice.page.get_by_role("button", name="Profile", exact=True).click()
    dialog = alice.page.get_by_role("dialog", name="Profile")
    profile = dialog.get_by_role("form", name="Your profile")
    password = dialog.get_by_role("form", name="Change password")
    await dialog.get_by_label("Display name").fill("Alice Wonder")
    await dialog.get_by_label("Time zone").select_option(ZONE)
    await dialog.get_by_role("button", name="Save profile").click()
    await expect(profile.get_by_role("status")).to_have_text("Saved.")
    await dialog.locator('input[name="avatar"]').set_input_files(
        {"name": "me.png", "mimeType": "image/png", "buffer": png(600, 400)}
    )
    await expect(profile.get_by_role("status")).to_have_text("Picture updated.")

    # Bob's page, never reloaded: the new name and picture on her message and in the list.
    await expect(bob_sees.locator(".author")).to_have_text("Alice Wonder")
    await expect(bob.member("alice").locator(".member-name")).to_have_text("Alice Wonder")
    await expect_picture(bob_sees.locator("img.avatar"), alice_id)
    await expect_picture(bob.member("alice").locator("img.avatar"), alice_id)
    # Her own page too, the user menu included.
    await expect_picture(alice.page.locator(".user-identity img.avatar"), alice_id)
    await expect(alice.page.locator(".user-identity strong")).to_have_text("Alice Wonder")
    await bob.screenshot("profile", "live")
    await alice.screenshot("profile", "dialog", readme="profile")

    # Her card in Bob's member list: her picture and the time it is where she is.
    await bob.member("alice").get_by_role("button", name="Alice Wonder").click()
    card = bob.page.get_by_role("dialog", name="Alice Wonder")
    await expect(card).to_contain_text("@alice")
    local = card.locator(".local-time")
    await expect(local).to_contain_text(f"local time ({ZONE})")
    await expect_local_time(local.locator("strong"), ZONE)
    await expect_picture(card.locator("img.avatar"), alice_id)
    await bob.screenshot("profile", "member-card", readme="member-card")
    await card.get_by_role("button", name="Close").click()
    await expect(card).to_have_count(0)

    # A wrong current password is refused; the right one changes it. (The refusals, and
    # the sign-in with the old password below, are the browser's logged 403 and 401.)
    alice.allowed.append(re.compile(r"status of 40[13] \((Forbidden|Unauthorized)\)"))
    await password.get_by_label("Current password").fill("not my password")
    await password.get_by_label("New password").fill(NEW_PASSWORD)
    await password.get_by_role("button", name="Change password").click()
    await expect(password.get_by_role("alert")).to_contain_text("current password")
    await password.get_by_label("Current password").fill(PASSWORD)
    await password.get_by_label("New password").fill(NEW_PASSWORD)
    await password.get_by_role("button", name="Change password").click()
    await expect(password.get_by_role("status")).to_contain_text("Password changed")
    await dialog.get_by_role("button", name="Close").click()

    await alice.page.get_by_role("button", name="Sign out").click()
    await expect(alice.page.get_by_role("heading", name="Sign in")).to_be_visible()
    await alice.page.get_by_label("Username or email").fill("alice")
    await alice.page.get_by_label("Password").fill(PASSWORD)
    await alice.page.get_by_role("button", name="Sign in").click()
    await expect(alice.page.get_by_role("alert")).to_be_visible()
    await alice.page.get_by_label("Password").fill(NEW_PASSWORD)
    await alice.page.get_by_role("button", name="Sign in").click()
    await expect(alice.channel_heading("general")).to_be_visible()
    await expect(alice.page.locator(".user-identity strong")).to_have_text("Alice Wonder")
