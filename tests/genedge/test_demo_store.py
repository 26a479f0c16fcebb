"""Each demo run gets a store of its own unless one is configured; old runs' stores are pruned."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from core.settings import Settings
from genedge.demo import fresh_demo_store


def test_a_new_store_per_run_the_newest_kept_and_a_configured_url_used_as_given(tmp_path: Path) -> None:
    runs = tmp_path / "demo"
    runs.mkdir()
    for i in range(6):  # six earlier runs, each with SQLite's side files
        for suffix in ("", "-wal", "-shm"):
            (runs / f"genedge-2026010{i}-000000-abcd.db{suffix}").write_text("x")
    settings = fresh_demo_store(Settings(), directory=runs, keep=3)
    url = settings.store.url.get_secret_value()
    assert url.startswith(f"sqlite:///{runs}/genedge-") and url.endswith(".db")
    left = sorted(p.name for p in runs.iterdir())
    assert left == [f"genedge-2026010{i}-000000-abcd.db{s}" for i in (4, 5) for s in ("", "-shm", "-wal")]
    assert fresh_demo_store(Settings(), directory=runs, keep=3).store.url.get_secret_value() != url

    configured = Settings(store={"url": SecretStr("sqlite:///mine.db")})  # as --config or GENEDGE_STORE__URL set it
    assert fresh_demo_store(configured, directory=runs) is configured
