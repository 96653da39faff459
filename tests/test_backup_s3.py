"""Backups to a real S3-protocol server (moto's server mode) that the tests start on 127.0.0.1."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from backup_helpers import actor, add_docs, cut_tail, tree_digest
from vault import backup
from vault.backup.repo import DATA, Repo
from vault.archive.vault import Vault

boto3 = pytest.importorskip("boto3")  # the test extra installs it; the s3 target needs it
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, tmp_path, request):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "XDG_CACHE_HOME": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    bucket = request.node.name.replace("_", "-")[:50].lower()
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/vault-a", s3_endpoint


@pytest.fixture
def office(office, tmp_path):
    o = office
    numbers = [o.create(name=f"Customer {i}", contact=f"c{i}@example.org") for i in range(2)]
    for i, no in enumerate(numbers):
        add_docs(o, no, 10, 30_000, tmp_path / "src", seed=i)
    add_docs(o, numbers[1], 1, 1_300_000, tmp_path / "src", seed=5)  # over 1 MiB: a pack of its own, streamed
    o.numbers = numbers
    return o


def test_s3_round_trip_incremental_and_verify(office, s3, tmp_path):
    base, endpoint = s3
    first = json.loads(office.run("backup", "run", base, "--endpoint-url", endpoint, "--json").stdout)
    url = first["target"]
    assert url == f"{base}?endpoint={endpoint.replace(':', '%3A').replace('/', '%2F')}"
    assert backup.known_targets(Vault.open(office.vault_dir)) == [url]
    again = json.loads(office.run("backup", "run", url, "--json").stdout)
    assert again["bytes_new"] == 0 and again["packs_new"] == 0
    add_docs(office, office.numbers[0], 1, 30_000, tmp_path / "src", seed=9)
    inc = json.loads(office.run("backup", "run", url, "--json").stdout)
    assert 30_000 <= inc["bytes_new"] < 0.2 * inc["bytes_total"]

    dest = tmp_path / "restored"
    office.run("backup", "restore", url, "latest", str(dest), who="bob")
    assert tree_digest(dest) == tree_digest(office.vault_dir)
    assert json.loads(office.run("--vault", str(dest), "check", "--read-data", "--json", who="bob").stdout)["ok"]
    assert "no problems" in office.run("backup", "verify", url, "--read-data", who="bob").stdout

    repo = Repo(url)
    victim = repo.list(DATA)[0]
    repo.delete(victim)
    res = office.run("backup", "verify", url, ok=False)
    assert res.exit_code == 1 and f"problem: {victim}: missing" in res.stdout


def test_s3_conditional_create_and_missing_names(s3):
    base, endpoint = s3
    target = backup.open_target(f"{base}?endpoint={endpoint}")
    target.put("data/aa/x", io.BytesIO(b"first"))
    target.put("data/aa/x", io.BytesIO(b"second"), create_only=True)  # If-None-Match: * keeps the first
    assert target.get("data/aa/x").read() == b"first"
    target.put("data/aa/x", io.BytesIO(b"third"))
    assert target.get("data/aa/x").read() == b"third" and list(target.list("data/")) == ["data/aa/x"]
    from vault.errors import NotFoundError, PluginError

    with pytest.raises((NotFoundError, PluginError)):
        target.get("data/aa/none")
    with pytest.raises((NotFoundError, PluginError)):
        target.delete("data/aa/none")


def test_s3_shred_keys_reaches_the_mirror(office, s3, tmp_path):
    base, endpoint = s3
    url = f"{base}?endpoint={endpoint}"
    v = actor(office).vault
    backup.run(v, url)
    did = next(p.name for p in (office.vault_dir / "dossiers").iterdir())
    rep = backup.shred_keys(url, [f"keys/{did}.age"])
    assert rep.reached and len(rep.removed) == 1
    assert not [n for n in Repo(url).list("keys/") if did in n]
    shutil.rmtree(tmp_path / "cache")
    assert backup.verify(url).ok


def test_s3_target_refuses_a_cut_history(office, s3, tmp_path):
    """[issue 14 property 5] the S3 target witnesses the history as a directory does."""
    base, endpoint = s3
    url = json.loads(office.run("backup", "run", base, "--endpoint-url", endpoint, "--json").stdout)["target"]
    office.create(name="Later Customer")
    count = len((office.vault_dir / "audit" / "log.jsonl").read_bytes().splitlines())
    office.run("backup", "run", url)
    snaps = Repo(url).snapshot_ids()
    cut_tail(office, count - 1)  # bob, with his own key, cuts the newest entry and re-signs
    res = office.run("backup", "run", url, ok=False, env={"VAULT_STATE_DIR": str(tmp_path / "fresh")})
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.stderr.startswith("vault: error: ") and "history cut or rolled back" in res.stderr
    assert f"recorded entry {count}" in res.stderr and "vault: hint: " in res.stderr
    assert Repo(url).snapshot_ids() == snaps
    ver = json.loads(office.run("backup", "verify", url, "--json").stdout)
    assert ver["history"]["count"] == count
