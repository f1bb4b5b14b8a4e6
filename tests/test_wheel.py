"""The wheel carries the web client: build it, install it in a clean virtualenv, serve `/`.

`python -m build` makes the sdist, then the wheel from the sdist, as a release would; the
web client must already be built (`make web`). `ROOMLER_TEST_WHEEL=path/to/roomler.whl`
tests a wheel built elsewhere (`make wheel`) instead. pip installs the dependencies from
its configured index or cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_serve import free_port, wait_for_health

pytestmark = [pytest.mark.slow, pytest.mark.nodb]

REPO = Path(__file__).resolve().parents[1]
DIST_INDEX = REPO / "src" / "roomler" / "web" / "dist" / "index.html"
BUILD_TIMEOUT = 300
INSTALL_TIMEOUT = 600


def clean_env() -> dict[str, str]:
    """The environment without this checkout's virtualenv or any Roomler setting."""
    drop = ("ROOMLER__", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def run(command: list[str], timeout: float, cwd: Path) -> None:
    done = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{command[:3]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("ROOMLER_TEST_WHEEL")
    if given:
        return Path(given)
    if not DIST_INDEX.exists():
        pytest.fail(f"{DIST_INDEX} is missing: run `make web` before building the wheel")
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], BUILD_TIMEOUT, REPO)
    (built,) = out.glob("roomler-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel (and its dependencies) installed: its bin/."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(venv)], BUILD_TIMEOUT, venv)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, str(wheel)], INSTALL_TIMEOUT, venv)
    return venv / "bin"


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [str(installed / "roomler"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_wheel_contains_the_built_web_client(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "roomler/web/dist/index.html" in names
    assert any(re.fullmatch(r"roomler/web/dist/assets/main-\w+\.js", name) for name in names)
    assert "roomler/db/migrations/versions/0001_initial.py" in names


def test_an_installed_wheel_serves_the_app_at_root(installed: Path, served: str) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import roomler; print(roomler.__file__)"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages" in where, where  # the installed copy, not this checkout

    index = httpx.get(f"{served}/")
    assert index.status_code == 200
    bundle = re.search(r'src="(/assets/main-\w+\.js)"', index.text)
    assert bundle, index.text
    assert httpx.get(f"{served}{bundle.group(1)}").status_code == 200
    docs_bundle = httpx.get(f"{served}/docs/assets/swagger-ui-bundle.js")
    assert docs_bundle.status_code == 200 and len(docs_bundle.content) > 100_000
