"""Readable controls (issue 14 item 6): axe-core's color-contrast rule (WCAG 2 AA: 4.5:1
for text, 3:1 for large text) over the chat screen, the call screen and the screen after
a call, in the real web client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import NewUser
from tests.web.harness import REPO, BrowserUser, ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
CONTRAST = "async () => (await axe.run(document, {runOnly: ['color-contrast']})).violations"


async def contrast_violations(page: Page) -> list[dict[str, Any]]:
    if not Path(AXE).exists():
        pytest.fail(f"{AXE} is missing: run `make web` (or `cd web && npm ci`)")
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = await page.evaluate(CONTRAST)
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {"html": node["html"][:120], "why": node["failureSummary"][:200]}
            for violation in violations
            for node in violation["nodes"]
        ],
        indent=1,
    )


async def assert_readable(user: BrowserUser, screen: str) -> None:
    violations = await contrast_violations(user.page)
    assert not violations, f"{screen}: text below 4.5:1 contrast:\n{describe(violations)}"


async def test_chat_call_and_after_call_screens_are_readable(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.send("Hello")
    await expect(bob.messages("Hello")).to_have_count(1)
    await assert_readable(bob, "chat")

    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await expect(alice.page.get_by_role("button", name="Leave call")).to_be_visible()
    await assert_readable(alice, "call")
    await expect(bob.page.get_by_role("button", name="Join call")).to_be_visible()
    await assert_readable(bob, "chat with a call going on")

    # Bob joins; Alice ends the call for everyone: Bob's screen says so.
    await bob.page.get_by_role("button", name="Join call").click()
    await expect(bob.page.get_by_role("button", name="Leave call")).to_be_visible()
    await alice.page.get_by_role("button", name="End for everyone").click()
    await expect(bob.page.get_by_role("button", name="Back to calls")).to_be_visible()
    await assert_readable(bob, "call ended")
    await bob.page.get_by_role("button", name="Back to calls").click()
    await expect(bob.page.get_by_role("heading", name="Calls")).to_be_visible()
    await assert_readable(bob, "calls list")
