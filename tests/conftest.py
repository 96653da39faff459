"""Every test gets its own client state and cache directories, English and the same machine time zone
(UTC, unless a test sets ``TZ``), restored after it; and the ``office`` fixture, the one test office."""

from __future__ import annotations

import pytest

from loopback import Inbox, free_port
from office import Office, build_office
from vault import clock


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the reviewed answer files under tests/vectors/rules/ (tests/test_rules.py)")


def pytest_configure(config):
    config.addinivalue_line("markers", "office(*members, dossier=None, doc=None, now=None): who the office "
                                       "fixture adds to alice and bob, the dossier bob creates, the document "
                                       "in it and the clock's time")


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
    # And what a backup job keeps to rebuild from its target, never in the developer's ~/.cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1 and the inbox it delivers to: ``(controller, inbox)``."""
    from aiosmtpd.controller import Controller  # only the mail tests pay for the import

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture
def office(request, tmp_path, monkeypatch) -> Office:
    """A vault founded by alice (supervisor) with bob (archivist), under ``tmp_path/office``.

    A test module names the rest of its cast with a mark, e.g.
    ``pytestmark = pytest.mark.office(*SALES_DESK, dossier={"name": "Acme"}, doc="a contract")``:
    members as (name, role, department), the dossier bob creates (``office.number``), the text of one
    contract in it (``office.doc``) and ``now=``, an ISO 8601 time for the clock. A module that needs
    more overrides this fixture and asks for it by name, so the common part is still built here.
    """
    mark = request.node.get_closest_marker("office")
    return build_office(tmp_path, monkeypatch, *(mark.args if mark else ()), **(mark.kwargs if mark else {}))


@pytest.fixture
def unjudged(monkeypatch):
    """Commits no longer ask the history's judgement before they put their files in place: what a
    member beyond their role writes with the library and their own key (bypassing ``audit.commit``'s
    check, as such a member can), for the tests that forge it and show that the history and
    ``vault check`` count it for nothing."""
    from vault.archive import audit

    monkeypatch.setattr(audit, "JUDGE", False)
