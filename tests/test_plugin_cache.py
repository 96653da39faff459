"""Entry points are found once and cached against the installed distributions' metadata."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vault import plugins
from vault.plugins import discovery

PLUGIN = """
    from vault.hookspecs import hookimpl

    @hookimpl
    def vault_register_notifiers(register):
        register("example.com/{name}", lambda options: None)
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A directory on sys.path to install throwaway distributions into, as pip would."""
    d = tmp_path / "site"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))
    yield d
    for m in ("vault_cachetest_a", "vault_cachetest_b"):
        sys.modules.pop(m, None)


def _install(site: Path, dist: str, module: str, ep: str, version: str = "1.0") -> Path:
    (site / f"{module}.py").write_text(textwrap.dedent(PLUGIN.format(name=module)))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[vault]\n{ep} = {module}\n")
    return info


@pytest.fixture
def scans(monkeypatch):
    """Counts the slow scans of every distribution's metadata (the real scan still runs)."""
    n = [0]
    real = discovery.scan

    def counting(group):
        n[0] += 1
        return real(group)

    monkeypatch.setattr(discovery, "scan", counting)
    return n


def _names():
    return {name for name, _ in plugins.get_plugin_manager(environ={}).list_name_plugin()}


def test_the_second_command_reads_the_cache(site, scans):
    _install(site, "vault-cachetest-a", "vault_cachetest_a", "cachetest-a")
    assert "cachetest-a" in _names() and scans[0] == 1
    assert "cachetest-a" in _names() and scans[0] == 1  # nothing changed: no scan
    files = list(discovery.cache_dir().iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(discovery.cache_dir().stat().st_mode) == 0o700


def test_the_cache_follows_installs_removals_and_changed_metadata(site, scans):
    base = _names()
    info = _install(site, "vault-cachetest-a", "vault_cachetest_a", "cachetest-a")
    assert _names() == base | {"cachetest-a"}
    # A second distribution installed beside it.
    info_b = _install(site, "vault-cachetest-b", "vault_cachetest_b", "cachetest-b")
    assert _names() == base | {"cachetest-a", "cachetest-b"}
    # Metadata rewritten in place (an editable reinstall renaming the entry point): same directory.
    time.sleep(0.01)
    (info / "entry_points.txt").write_text("[vault]\ncachetest-renamed = vault_cachetest_a\n")
    assert _names() == base | {"cachetest-renamed", "cachetest-b"}
    # Uninstalled.
    for f in info_b.iterdir():
        f.unlink()
    info_b.rmdir()
    assert _names() == base | {"cachetest-renamed"}
    assert scans[0] == 5  # one scan per change, none more
    assert _names() == base | {"cachetest-renamed"} and scans[0] == 5


def test_a_cache_others_may_write_is_not_trusted(site, scans):
    """Whoever can write the cache chooses what the vault imports: a group- or world-writable cache
    (or directory) is ignored and rewritten, and what it said is not loaded."""
    _install(site, "vault-cachetest-a", "vault_cachetest_a", "cachetest-a")
    _names()
    (path,) = discovery.cache_dir().iterdir()
    data = json.loads(path.read_text())
    data["entry_points"] = [[d, v, "forged" if n == "cachetest-a" else n, val] for d, v, n, val in data["entry_points"]]
    path.write_text(json.dumps(data))
    os.chmod(path, 0o666)
    names = _names()
    assert "forged" not in names and "cachetest-a" in names and scans[0] == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # written again, ours alone
    # The same forged content in a writable directory.
    path.write_text(json.dumps(data))
    os.chmod(discovery.cache_dir(), 0o777)
    try:
        assert "forged" not in _names() and scans[0] == 3
    finally:
        os.chmod(discovery.cache_dir(), 0o700)
    # With our own modes it is used as is: the forgery shows that the check above is what refused it.
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)
    assert "forged" in _names() and scans[0] == 3


def test_a_damaged_cache_is_scanned_again(site, scans):
    _names()
    (path,) = discovery.cache_dir().iterdir()
    path.write_bytes(b"\x00not json")
    os.chmod(path, 0o600)
    assert "numbering" in _names() and scans[0] == 2


def test_entry_point_values_load_as_importlib_does():
    import vault_plugins.numbering

    assert discovery.load("vault_plugins.numbering") is vault_plugins.numbering
    assert discovery.load("vault_plugins.numbering:vault_register_numbering_schemes") \
        is vault_plugins.numbering.vault_register_numbering_schemes
    assert discovery.load("os.path:join [extra]") is os.path.join
    with pytest.raises(ValueError):
        discovery.load("not a value!")


def test_the_conformance_kit_reads_the_metadata_itself(site, scans):
    """A plugin author's kit run proves the packaging from the installed metadata, and leaves the
    user's cache alone."""
    from vault.testing.base import plugin_manager_for

    _install(site, "vault-cachetest-a", "vault_cachetest_a", "cachetest-a")
    assert plugin_manager_for("cachetest-a").has_plugin("cachetest-a")
    assert scans[0] == 1
    assert not discovery.cache_dir().exists() or not list(discovery.cache_dir().iterdir())
