from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from roomler.config import ConfigError, load_settings

pytestmark = pytest.mark.nodb


def run_roomler(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROOMLER__")}
    return subprocess.run(
        [sys.executable, "-m", "roomler", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_match_the_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("ROOMLER__"):
            monkeypatch.delenv(key)
    settings = load_settings()
    assert (settings.app.host, settings.app.port) == ("0.0.0.0", 3000)
    assert settings.database.url == "sqlite+aiosqlite:///./data/roomler.db"
    assert settings.jwt.access_token_ttl_secs == 900
    assert settings.jwt.refresh_token_ttl_secs == 604800
    assert settings.jwt.issuer == "roomler"
    assert settings.mediasoup.num_workers == 2
    assert settings.typing.timeout_secs == 8


def test_environment_keys_with_double_underscores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOMLER__APP__PORT", "4100")
    monkeypatch.setenv("ROOMLER__APP__CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("ROOMLER__MEDIASOUP__RTC_MIN_PORT", "41000")
    monkeypatch.setenv("ROOMLER__MEDIASOUP__ANNOUNCED_IP", "203.0.113.7")
    monkeypatch.setenv("ROOMLER__TURN__URL", "turn:127.0.0.1:3478")
    settings = load_settings()
    assert settings.app.port == 4100
    assert settings.app.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.mediasoup.rtc_min_port == 41000
    assert settings.mediasoup.announced_ip == "203.0.113.7"
    assert settings.turn.url == "turn:127.0.0.1:3478"


def test_cors_origins_accepts_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOMLER__APP__CORS_ORIGINS", '["https://a.example"]')
    assert load_settings().app.cors_origins == ["https://a.example"]


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ROOMLER__APP__PORT=4555\n")
    assert load_settings().app.port == 4555


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("ROOMLER__APP__PORT", "eighty", "ROOMLER__APP__PORT"),
        ("ROOMLER__APP__PORT", "70000", "ROOMLER__APP__PORT"),
        ("ROOMLER__DATABASE__URL", "mysql://x", "ROOMLER__DATABASE__URL"),
        ("ROOMLER__JWT__SECRET", "short", "ROOMLER__JWT__SECRET"),
        ("ROOMLER__MEDIASOUP__NUM_WORKERS", "0", "ROOMLER__MEDIASOUP__NUM_WORKERS"),
    ],
)
def test_invalid_value_names_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_inverted_port_range_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOMLER__MEDIASOUP__RTC_MIN_PORT", "50000")
    monkeypatch.setenv("ROOMLER__MEDIASOUP__RTC_MAX_PORT", "40000")
    with pytest.raises(ConfigError, match="ROOMLER__MEDIASOUP"):
        load_settings()


def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    result = run_roomler("serve", env={"ROOMLER__APP__PORT": "not-a-port"}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ROOMLER__APP__PORT" in lines[0] and "Traceback" not in result.stderr


def test_migrate_creates_the_sqlite_database(tmp_path: Path) -> None:
    result = run_roomler("migrate", env={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "roomler.db").exists()
    again = run_roomler("migrate", env={}, cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_generated_jwt_secret_is_private_and_stable(tmp_path: Path) -> None:
    settings = load_settings(app={"data_dir": tmp_path / "data"})
    first = settings.jwt_secret
    path = tmp_path / "data" / "jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_settings(app={"data_dir": tmp_path / "data"}).jwt_secret == first
