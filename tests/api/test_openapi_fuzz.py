"""Property-based test of the whole OpenAPI against a real server (schemathesis).

Every documented operation gets a bounded number of generated requests (valid and
invalid), authenticated as a tenant owner, with `tid` and `cid` naming that owner's
tenant and channel so the requests reach past the membership and existence checks.
No answer may be a 5xx, and every answer must match the documented schema for its
status (the error shape included).
Run it on PostgreSQL too: that is where unstorable text used to give a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

# The real-server fixtures of the real-time tests.
from tests.realtime.conftest import LiveServer, db, start_server  # noqa: F401

# Bounded: about 35 operations x EXAMPLES cases, 30-60 s on a loaded 2-core machine. 40 is
# what it took to find a NUL in `PUT /api/auth/me` on PostgreSQL before `Text` refused it.
EXAMPLES = 40
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def live(start_server: Callable[[], LiveServer]) -> LiveServer:  # noqa: F811
    return start_server()


@pytest.fixture
def owner_session(live: LiveServer) -> tuple[dict[str, str], dict[str, str]]:
    """The bearer header of a user who owns a tenant, and the ids of it and a channel."""
    body = {
        "email": "fuzz@example.com",
        "username": "fuzzowner",
        "display_name": "Fuzz",
        "password": "correct horse battery",
        "tenant_name": "Fuzz",
        "tenant_slug": "fuzz",
    }
    with httpx.Client(base_url=live.http_url) as http:
        registered = http.post("/api/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        tenants = http.get("/api/tenant", headers=headers).json()
        tenant_id = tenants["items"][0]["id"] if "items" in tenants else tenants[0]["id"]
        channel = http.post(
            f"/api/tenant/{tenant_id}/channel", headers=headers, json={"name": "general"}
        )
        assert channel.status_code == 201, channel.text
    return headers, {"tid": tenant_id, "cid": channel.json()["id"]}


@pytest.mark.slow
def test_no_answer_is_a_server_error_and_every_answer_matches_the_schema(
    live: LiveServer, owner_session: tuple[dict[str, str], dict[str, str]]
) -> None:
    headers, real_ids = owner_session
    schema = schemathesis.openapi.from_url(f"{live.http_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/ready":  # a readiness probe: 503 is its answer while starting
            continue

        @given(case=st.one_of(operation.as_strategy(generation_mode=m) for m in MODES))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            # Real ids for the tenant and channel, so requests get past the 403 and 404.
            for name, value in real_ids.items():
                if name in (case.path_parameters or {}):
                    case.path_parameters[name] = value
            case.call_and_validate(base_url=live.http_url, headers=headers, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # note it, go on with the next operation
            causes = getattr(exc, "exceptions", ())  # what Hypothesis saw first, if flaky
            failures.append(f"{operation.label}: {exc} {[str(c)[:2000] for c in causes]}")
    assert failures == []
