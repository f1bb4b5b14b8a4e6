"""The engine's modules import downward only: no cycle, not even for type checking.

A lower object is given what it needs of a higher one as a Protocol
(engine/interfaces.py, media_transport.TransportOwner), so e.g. producer.py never
imports transport.py and transport.py never imports router.py.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import roomler.sfu.engine

ENGINE = Path(roomler.sfu.engine.__file__).parent


def engine_imports(path: Path) -> set[str]:
    """The engine modules `path` imports, at run time or under TYPE_CHECKING."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names.add(node.module.split(".")[0])
            elif node.level == 0 and (node.module or "").startswith("roomler.sfu.engine."):
                names.add((node.module or "").split(".")[3])
    return names


def test_engine_modules_form_no_cycle() -> None:
    graph = {
        path.stem: engine_imports(path) for path in ENGINE.glob("*.py") if path.stem != "__init__"
    }
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"engine modules import in a circle: {exc.args[1]}") from None
    assert order.index("producer") < order.index("consumer") < order.index("transport")
    assert order.index("transport") < order.index("router") < order.index("handler")
    assert {"transport", "router", "consumer"}.isdisjoint(graph["producer"])
    assert {"transport", "router"}.isdisjoint(graph["consumer"])
    assert "router" not in graph["transport"]
