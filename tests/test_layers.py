"""Dependencies point one way (docs/architecture.md, "Layers").

    sfu          a library of its own: nothing of roomler outside roomler.sfu
    realtime     nothing of api, conference, cluster (nor the app that composes them)
    conference   builds on realtime and sfu; nothing of api or cluster
    cluster      plugs into realtime's and conference's interfaces; nothing of api
    api          on all of them, but the SFU only through its package (`roomler.sfu`)
    app          composes everything

Every import counts, including those under `TYPE_CHECKING` and inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import roomler

SOURCE = Path(roomler.__file__).parent

# Package (or module) -> what it must not import (each a module and everything under it).
FORBIDDEN = {
    "roomler.sfu": ["roomler.*"],  # except roomler.sfu itself
    "roomler.realtime": [
        "roomler.api",
        "roomler.conference",
        "roomler.cluster",
        "roomler.context",
        "roomler.app",
    ],
    "roomler.conference": ["roomler.api", "roomler.cluster", "roomler.context", "roomler.app"],
    "roomler.cluster": ["roomler.api", "roomler.context", "roomler.app"],
    "roomler.db": [
        "roomler.api",
        "roomler.realtime",
        "roomler.conference",
        "roomler.cluster",
        "roomler.app",
    ],
    # Stored bytes: a service of its own under api (uploads) and conference (recordings).
    "roomler.files": [
        "roomler.api",
        "roomler.realtime",
        "roomler.conference",
        "roomler.cluster",
        "roomler.context",
        "roomler.app",
    ],
    # Recording media (depacketizers, WebM writer): on the SFU library only; conference
    # feeds it (conference/recording.py).
    "roomler.recording": [
        "roomler.api",
        "roomler.realtime",
        "roomler.conference",
        "roomler.cluster",
        "roomler.db",
        "roomler.context",
        "roomler.app",
    ],
    # Message search: its index is created by a migration (db), its route is in api.
    "roomler.search": [
        "roomler.api",
        "roomler.realtime",
        "roomler.conference",
        "roomler.cluster",
        "roomler.context",
        "roomler.app",
    ],
    # The SFU's modules are its own business: callers use what the package exports.
    "roomler.api": ["roomler.sfu.channel", "roomler.sfu.proxies", "roomler.sfu.api"],
    "roomler.conference.signaling": [
        "roomler.sfu.channel",
        "roomler.sfu.proxies",
        "roomler.sfu.api",
    ],
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a module of `package` imports, absolute (`from . import x` resolved)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def violations(imports: set[str], forbidden: list[str]) -> list[str]:
    bad = []
    for target in sorted(imports):
        for rule in forbidden:
            if rule == "roomler.*":
                if target.startswith("roomler.") and not _within(target, "roomler.sfu"):
                    bad.append(target)
            elif _within(target, rule):
                bad.append(target)
    return bad


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def all_modules() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("owner", sorted(FORBIDDEN))
def test_no_module_imports_against_the_direction(owner: str) -> None:
    found = {}
    for path in all_modules():
        name = module_name(path)
        if _within(name, owner):
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            bad = violations(imported_modules(path.read_text(), package), FORBIDDEN[owner])
            if bad:
                found[name] = bad
    assert found == {}, f"imports against the direction of the layers: {found}"


def test_the_check_sees_lazy_relative_and_type_checking_imports() -> None:
    probe = (
        "from typing import TYPE_CHECKING\n"
        "from roomler.realtime.wire import encode\n"
        "from .. import app\n"
        "if TYPE_CHECKING:\n"
        "    from roomler.conference.conference_media import ConferenceMedia\n"
        "def later():\n"
        "    import roomler.cluster.node\n"
    )
    imports = imported_modules(probe, "roomler.realtime")
    assert violations(imports, FORBIDDEN["roomler.realtime"]) == [
        "roomler.app",
        "roomler.cluster.node",
        "roomler.conference.conference_media",
        "roomler.conference.conference_media.ConferenceMedia",
    ]
    sfu = imported_modules(
        "from roomler.config import Settings\nfrom . import rtp\n", "roomler.sfu"
    )
    assert violations(sfu, FORBIDDEN["roomler.sfu"]) == [
        "roomler.config",
        "roomler.config.Settings",
    ]
