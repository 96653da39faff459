"""Every test gets its own client state directory (the remembered history checkpoint, witness.py) and English."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _client_state(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path_factory.mktemp("client-state")))
    # The command line speaks the environment's language (Chinese when none is set); tests read English
    # unless they ask for another (tests/test_i18n_cli.py).
    monkeypatch.setenv("VAULT_LANG", "en")
    monkeypatch.setenv("LANGUAGE", "en")  # for tests that pass a child process no VAULT_ variables
