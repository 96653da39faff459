"""A running portal for tests: a test office, an invitation, and ``vault portal serve`` in a subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from loopback import free_port
from office import build_office

ORG = "Marker Trading Co. 标记贸易公司"


@dataclass
class PortalProcess:
    """``vault portal serve`` run as an operator would, with its own working and temporary directories."""

    proc: subprocess.Popen
    base: str
    workdir: Path
    tmpdir: Path
    log: Path

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log.read_text(errors="replace")


def start_portal(vault_dir: Path, root: Path, *args: str) -> PortalProcess:
    workdir, tmpdir = root / "portal-cwd", root / "portal-tmp"
    workdir.mkdir(parents=True, exist_ok=True)
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update({"VAULT_DIR": str(vault_dir), "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"})
    log = root / "portal.log"
    # The free port is free when asked for; a parallel test may take it before the portal binds it,
    # and the portal then exits: another port, a few times.
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "vault", "portal", "serve", "--listen", f"127.0.0.1:{port}",
                                 "--organisation", ORG, *args], cwd=workdir, env=env, stdout=open(log, "wb"),
                                stderr=subprocess.STDOUT)
        if _listening(proc, port):
            return PortalProcess(proc, f"http://127.0.0.1:{port}", workdir, tmpdir, log)
        if proc.poll() is None:
            proc.kill()
            raise RuntimeError("the portal did not start listening")
        if "in use" not in log.read_text(errors="replace"):
            raise RuntimeError(f"the portal exited: {log.read_text()}")
    raise RuntimeError(f"the portal found no free port: {log.read_text()}")


def _listening(proc: subprocess.Popen, port: int) -> bool:
    """Whether ``proc`` listens on ``port`` within 30 seconds (False at once if it exits)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc.poll() is None  # it, not a server that took the port first
        except OSError:
            time.sleep(0.05)
    return False


#: The portal's office: bob the archivist, lena the sales liaison, sam of sales, and an open sales dossier.
PORTAL_CAST = (("lena", "liaison", "sales"), ("sam", "staff", "sales"))
PORTAL_DOSSIER = {"name": "Portal Customer", "dept": "sales"}


def portal_office(root: Path, monkeypatch):
    """The portal's office under ``root/office``, for a fixture of wider scope than the ``office`` one."""
    return build_office(root, monkeypatch, *PORTAL_CAST, dossier=PORTAL_DOSSIER)


def invite(o, base: str, *extra: str, who: str = "bob") -> dict:
    return o.json("intake", "invite", o.number, "--base-url", base, *extra, who=who)
