"""Every test gets its own client state directory (the remembered history checkpoint, witness.py),
English, and the same machine time zone (UTC, unless a test sets ``TZ``), restored after it."""

from __future__ import annotations

import pytest

from vault import clock


@pytest.fixture(autouse=True)
def _client_state(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path_factory.mktemp("client-state")))
    # The command line speaks the environment's language (Chinese when none is set); tests read English
    # unless they ask for another (tests/test_i18n_cli.py).
    monkeypatch.setenv("VAULT_LANG", "en")
    monkeypatch.setenv("LANGUAGE", "en")  # for tests that pass a child process no VAULT_ variables
    # The machine's zone is the CLI's default: pinned so that a developer in another zone sees the
    # same dates; the process-wide zone a command set is put back after each test.
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setattr(clock, "_zone", clock.current_zone())


@pytest.fixture(autouse=True)
def _plugin_cache(tmp_path_factory, monkeypatch):
    """The entry-point cache of each test in its own directory, never the developer's."""
    monkeypatch.setenv("VAULT_CACHE_DIR", str(tmp_path_factory.mktemp("cache") / "vault"))
