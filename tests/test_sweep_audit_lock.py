"""A writer's sweep of temporary files never deletes the audit trail's temporary file mid-append.

Readers append to the audit trail under the audit lock alone (never the vault's write lock), writing
its checkpoint through a temporary file. A writer taking the vault's write lock sweeps temporaries
left by interrupted commands; sweeping one still being written made a concurrent reader's command
fail (seen as a FileNotFoundError from parallel grants of one approval). The sweep now waits for the
audit lock.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from office import make_office
from vault.archive.vault import Vault

# Holds the audit lock, writes a temporary file beside the checkpoint, says so, waits, then checks
# that its temporary file is still there before it would rename it.
APPENDER = r"""
import sys, time
from pathlib import Path
from vault.archive import audit
from vault.archive.vault import Vault

v = Vault.open(Path(sys.argv[1]))
with audit.lock(v, exclusive=True):
    tmp = v.root / "audit" / ".tmp-checkpoint.toml.appender"
    tmp.write_bytes(b"half written")
    Path(sys.argv[2]).write_text("ready")
    time.sleep(1.5)
    ok = tmp.exists()
    tmp.unlink(missing_ok=True)
sys.exit(0 if ok else 1)
"""


def test_a_writers_sweep_waits_for_an_append_under_way(tmp_path, monkeypatch):
    o = make_office(tmp_path, monkeypatch)
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", APPENDER, str(o.vault_dir), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the appender did not start"
            time.sleep(0.02)
        v = Vault.open(o.vault_dir)
        with v.lock(exclusive=True):  # sweeps temporaries: must not take the appender's
            pass
        assert child.wait(timeout=60) == 0, "the sweep deleted the audit trail's temporary file mid-append"
    finally:
        if child.poll() is None:
            child.kill()
    left = [p.name for p in Path(o.vault_dir, "audit").iterdir() if p.name.startswith(".tmp-")]
    assert left == []
