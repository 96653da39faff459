"""Names as people write them: display names of members, departments, business types and classes.

Attacker first: a member name that spoofs another (lookalike letters from another script, a name that
is another member's id, invisible and direction-changing characters) must be refused — by the
command, and by the history's replay for an entry written with the library.
"""

from __future__ import annotations

import json

import pytest

from office import make_office
from vault.archive import audit, authority, committed
from vault.archive.members import _member_record
from vault.archive.vault import Vault
from vault.cli import cli
from vault.errors import ConflictError, InputError, NotFoundError
from vault.office import membership
from vault.store import identity, names, records


@pytest.fixture
def office(office):
    o = office
    o.keygen("zs")
    o.json("member", "add", "zhangsan", "--display-name", "张三", "--key", o.keys["zs"], "--dept", "sales",
           "--role", "staff", who="alice")
    return o


def _add(o, name, *extra, key="x", ok=False):
    o.keygen(key)
    return o.run("member", "add", name, *extra, "--key", o.keys[key], "--dept", "sales", "--role", "staff",
                 who="alice", ok=ok)


def _refused(res, *words):
    assert res.exit_code != 0
    err = res.stderr
    assert err.startswith("vault: error: ") and "vault: hint: " in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# -- attacks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spoof", [
    "zhangsan",        # exactly the other member's id
    "ｚｈａｎｇｓａｎ",  # full-width: NFKC makes it zhangsan, the member's id
    "ZhangSan",        # case
    "zhang-san",       # punctuation
    "zhangsa n",       # a space
    "zhangsań",  # an accent
    "zhangsаn",        # one Cyrillic а (refused as soon as it mixes scripts; see below)
])
def test_a_display_name_that_is_another_members_id_is_refused(office, spoof):
    res = _add(office, "wang", "--display-name", spoof)
    _refused(res)
    assert "looks like" in res.stderr or "mixes scripts" in res.stderr


@pytest.mark.parametrize("spoof", ["张三", "张 三", "张·三", "张三 ", "张三　"])
def test_a_display_name_that_looks_like_another_members_is_refused(office, spoof):
    _refused(_add(office, "wang", "--display-name", spoof), "looks like", "zhangsan")


def test_an_id_that_looks_like_another_members_id_is_refused(office):
    for i, spoof in enumerate(("zhangsan.", "zhang_san", "zhangsan-")):
        _refused(_add(office, spoof, key=f"k{i}"), "looks like", "zhangsan")


def test_an_all_cyrillic_lookalike_of_a_latin_name_is_refused(office):
    _add(office, "pepe", key="p", ok=True)
    # Every letter Cyrillic (р, е): one script, so only the lookalike table catches it.
    _refused(_add(office, "wang", "--display-name", "рере"), "looks like", "pepe")


def test_kana_that_looks_like_han_is_refused(office):
    _add(office, "li", "--display-name", "力工", key="l", ok=True)
    _refused(_add(office, "wang", "--display-name", "カエ"), "looks like", "li")


def test_a_new_id_that_is_another_members_display_name_is_refused(office):
    _add(office, "lisi", "--display-name", "Li Si", key="l", ok=True)
    _refused(_add(office, "l1si"), "looks like", "lisi")


@pytest.mark.parametrize("bad,why", [
    ("张\u202e三", "direction-changing"),   # RIGHT-TO-LEFT OVERRIDE
    ("张\u2066三\u2069", "direction-changing"),  # isolates
    ("张\u200b三", "invisible"),            # ZERO WIDTH SPACE
    ("张\u200d三", "invisible"),            # ZERO WIDTH JOINER
    ("\ufeff张三", "invisible"),            # BOM
    ("张\x1b[31m三", "control"),
    ("张\u2028三", "line separator"),
    ("\u0301张三", "combining mark"),
    ("a\u0301\u0301\u0301\u0301", "combining mark"),  # stacked marks hide what is under them
    ("Aлиса", "mixes scripts"),
    ("张" * 65, "longer than 64"),
    ("   ", "empty"),
    ("---", "no letter or digit"),
    ("销售/市场", "slash"),
    ("\ue000张", "private-use"),
])
def test_hostile_display_names_are_refused(office, bad, why):
    _refused(_add(office, "wang", "--display-name", bad), why)
    with pytest.raises(InputError):
        names.display_name(bad)


@pytest.mark.usefixtures("unjudged")
def test_the_replay_refuses_a_library_written_spoof(office, tmp_path):
    """A supervisor's client that skips the command's check still writes an entry that counts for
    nothing: the replay compares the new name with every member's."""
    v = Vault.open(office.vault_dir)
    alice = v.act_as(identity.load_identity(office.ident("alice"), "correct horse battery staple"))
    office.keygen("w")
    key = identity.PublicKey.parse(office.keys["w"])
    spoof = "ZhangSan"  # a valid display name, but it reads as the id of member zhangsan
    rec = _member_record("wang", key, ["staff"], "sales", "alice", spoof, at=v.clock.stamp())
    alice.commit("member.add", {"members/wang.toml": records.dump_toml(alice.sign(rec))}, ref="wang", obj="wang",
                 subject={"key": key.line(), "roles": ["staff"], "dept": "sales", "display_name": spoof})
    assert "wang" not in authority.members(v)
    res = audit.verify(v)
    assert any("looks like that of zhangsan" in p for p in res.problems), res.problems


def test_a_display_name_is_normalised_nfkc():
    assert names.display_name("Ｚｈａｎｇ\u3000San") == "Zhang San"
    assert names.display_name("  张  三 ") == "张 三"
    assert names.display_name("㈱标记") == "(株)标记"
    assert names.skeleton("Zhang San") == names.skeleton("zhang-san") == names.skeleton("ZHANG_SAN")


def test_names_that_only_look_different_in_another_script_are_not_confused():
    # Traditional and simplified forms are different names (as the search index has it).
    assert names.skeleton("張三") != names.skeleton("张三")
    assert names.skeleton("王五") != names.skeleton("王伍")


# -- use ---------------------------------------------------------------------------------------------

def test_member_add_makes_an_id_for_a_chinese_name_and_lookups_take_either(office):
    office.keygen("ls")
    out = office.json("member", "add", "李四", "--key", office.keys["ls"], "--dept", "sales", "--role", "staff",
                      who="alice")
    ident = out["name"]
    assert names.is_id(ident) and ident.startswith("m-") and out["display_name"] == "李四"
    by_name = office.json("member", "show", "李四")
    assert by_name == office.json("member", "show", ident)
    assert by_name["display_name"] == "李四" and by_name["name"] == ident
    assert office.json("member", "show", "张三")["name"] == "zhangsan"
    assert "张三 (zhangsan)" not in office.run("member", "show", "zhangsan").stdout  # display on its own line
    assert "张三" in office.run("member", "list").stdout
    listed = {r["name"]: r["display_name"] for r in office.json("member", "list")}
    assert listed["zhangsan"] == "张三" and listed["alice"] is None
    # The record is signed by the supervisor and carries the name; the entry carries it for the replay.
    rec = (office.vault_dir / "members" / f"{ident}.toml").read_text(encoding="utf-8")
    assert 'display_name = "李四"' in rec and "[signature]" in rec
    entry = json.loads((office.vault_dir / "audit" / "log.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert entry["subject"]["display_name"] == "李四"


def test_a_name_shown_in_lists_and_the_audit_log(office):
    office.keygen("head")
    office.run("member", "add", "head", "--display-name", "王经理", "--key", office.keys["head"], "--dept", "sales",
               "--role", "dept-head", who="alice")
    number = office.create(name="Hangzhou Biaoji")
    req = office.json("request", "access", number, "--purpose", "audit", who="head")["number"]
    # Filtered by the display name, shown by it beside the id; --json keeps the id.
    entries = office.json("audit", "log", "--member", "王经理", who="alice")
    assert entries and {e["member"] for e in entries} == {"head"}
    text = office.run("audit", "log", who="alice").stdout
    assert "王经理 (head)" in text
    assert "王经理 (head)" in office.run("request", "list", who="alice").stdout
    assert req in office.run("request", "list", who="alice").stdout


def test_an_ambiguous_lookup_lists_the_candidates():
    # Display names this alike are refused when added; a lookup still says which ones it could mean.
    candidates = {"wang1": "王 伟", "wang2": None, "wangwei": None}
    with pytest.raises(InputError) as e:
        names.resolve("member", "王·伟", {"a": "王伟", "b": "王 伟"}, listing="x")
    assert "a (王伟)" in str(e.value) and "b (王 伟)" in str(e.value)
    with pytest.raises(NotFoundError):
        names.resolve("member", "nobody", candidates, listing="x")
    # An exact id wins over a lookalike: old vaults may hold ids that look alike.
    assert names.resolve("member", "b0b", {"bob": None, "b0b": None}, listing="x") == "b0b"


def test_member_show_of_an_unknown_name_is_one_clean_error(office):
    _refused(office.run("member", "show", "王五", ok=False), "no member")


def test_member_remove_by_display_name(office):
    out = office.json("member", "remove", "张三", who="alice")
    assert out["removed"] == "zhangsan"
    # A former member's name is never reused, nor their display name.
    _refused(_add(office, "zhangsan2", "--display-name", "张三"), "looks like")


def test_founder_display_name_and_time_zone_at_init(tmp_path, monkeypatch):
    o = make_office(tmp_path / "a", monkeypatch)
    root = tmp_path / "b"
    o.run("init", str(root / "v"), "--supervisor", "laowang", "--display-name", "老王", "--tz", "Asia/Shanghai",
          "--key", o.keys["alice"])
    r = o.runner.invoke(cli, ["member", "show", "老王", "--json"],
                        env={"VAULT_DIR": str(root / "v")})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["name"] == "laowang"
    r = o.runner.invoke(cli, ["policy", "show", "--json"],
                        env={"VAULT_DIR": str(root / "v")})
    assert json.loads(r.stdout)["time_zone"] == "Asia/Shanghai"
    # Only a name as people write it: an id is made, and printed.
    out = o.json("init", str(root / "w"), "--supervisor", "老王", "--key", o.keys["alice"])
    assert out["supervisor"].startswith("m-")
    r = o.runner.invoke(cli, ["member", "show", "老王", "--json"], env={"VAULT_DIR": str(root / "w")})
    assert json.loads(r.stdout)["name"] == out["supervisor"]


def test_library_add_member_refuses_a_lookalike(office):
    v = Vault.open(office.vault_dir)
    alice = v.act_as(identity.load_identity(office.ident("alice"), "correct horse battery staple"))
    office.keygen("q")
    with pytest.raises(ConflictError):
        membership.add_member(alice, "q", identity.PublicKey.parse(office.keys["q"]), ["staff"], "sales",
                              display_name="ZHANGSAN")


# -- departments, business types and classes: names in the policy ------------------------------------

NAMES = '''
[names.departments]
sales = "销售部"
archive = "档案室"

[names.business]
network-services = "网络服务"

[names.classes]
enterprise = "企业客户"
"enterprise/network-services" = "网络服务"
'''


def _policy_with(office, tmp_path, extra: str):
    policy = office.run("policy", "show").stdout.split("\n", 1)[1]
    p = tmp_path / "policy.toml"
    p.write_text(policy + "\n" + extra, encoding="utf-8")
    return office.run("policy", "update", str(p), who="alice", ok=False)


def test_departments_business_types_and_classes_by_their_names(office, tmp_path):
    assert _policy_with(office, tmp_path, NAMES).exit_code == 0
    out = office.json("dossier", "create", "--type", "enterprise", "--business", "网络服务", "--dept", "销售部",
                      "--name", "杭州标记科技有限公司", who="bob")
    shown = office.json("dossier", "show", out["number"], who="bob")
    assert (shown["business"], shown["dept"]) == ("network-services", "sales")  # ids on disk and in --json
    text = office.run("dossier", "show", out["number"], who="bob").stdout
    assert "dept: 销售部" in text and "business: 网络服务" in text and "class: 企业客户/网络服务/" in text
    assert "企业客户/网络服务/" in office.run("dossier", "list", who="bob").stdout
    assert "销售部" in office.run("dossier", "list", who="bob").stdout
    # Filters take either form.
    by_name = office.json("find", "--dept", "销售部", "--class", "企业客户/网络服务", who="bob")
    assert [r["number"] for r in by_name] == [out["number"]]
    assert office.json("find", "--dept", "sales", who="bob") == by_name
    # The register too: filtered by the department's name, its table showing the names, in line.
    table = office.run("register", "--dept", "销售部", who="bob").stdout.splitlines()
    assert out["number"] in table[1] and "销售部" in table[1] and "企业客户/网络服务/" in table[1]
    assert table[1].index(out["number"]) == table[0].index("number")
    # A member's department too.
    office.keygen("w")
    added = office.json("member", "add", "wangwu", "--display-name", "王五", "--dept", "销售部", "--key",
                        office.keys["w"], "--role", "staff", who="alice")
    assert added["dept"] == "sales"
    assert "dept: 销售部" in office.run("member", "show", "王五").stdout
    # An unknown name is one clear error.
    res = office.run("dossier", "create", "--type", "enterprise", "--business", "网络服务", "--dept", "财务部",
                     "--name", "X", who="bob", ok=False)
    _refused(res, "no department", "[names.departments]")


def test_the_review_email_names_the_department_and_classes(office, tmp_path):
    assert _policy_with(office, tmp_path, NAMES).exit_code == 0
    office.json("dossier", "create", "--type", "enterprise", "--business", "网络服务", "--dept", "销售部",
                "--name", "杭州标记科技有限公司", who="bob")
    out = tmp_path / "reports"
    out.mkdir()
    office.run("review", "notify", "--report-dir", str(out), "--dept", "销售部", who="bob")
    text = "".join(p.read_text(encoding="utf-8") for p in out.iterdir())
    assert "销售部 (sales)" in text and "企业客户/网络服务/" in text


@pytest.mark.parametrize("extra,why", [
    ('[names.departments]\nsales = "销售部"\nmarketing = "销 售 部"\n', "looks like"),
    ('[names.departments]\nsales = "Marketing"\nmarketing = "Sales"\n', "looks like"),  # a name that is another's id
    ('[names.departments]\nsales = "销售\u202e部"\n', "direction-changing"),
    ('[names.business]\nretail = "零售\u200b"\n', "invisible"),
    ('[names.departments]\nsales = "ｓａｌｅｓ部"\n', "normal form"),
])
def test_a_policy_with_spoofing_names_is_refused(office, tmp_path, extra, why):
    res = _policy_with(office, tmp_path, extra)
    _refused(res, why)
    assert "names" not in office.json("policy", "show")


def test_the_review_mail_goes_to_a_department_named_in_chinese(office, tmp_path, smtp):
    """End to end over real SMTP on loopback: the address is given for 销售部, the subject names it."""
    controller, inbox = smtp
    assert _policy_with(office, tmp_path, NAMES).exit_code == 0
    office.json("dossier", "create", "--type", "enterprise", "--business", "网络服务", "--dept", "销售部",
                "--name", "杭州标记科技有限公司", who="bob")
    sent = office.json("review", "notify", "--notifier", "smtp", "--smtp-host", "127.0.0.1", "--smtp-port",
                       str(controller.port), "--from", "archive@example.org", "--to", "销售部=sales@example.org",
                       "--to", "other@example.org", who="bob")
    assert [s["dept"] for s in sent] == ["sales"]
    (rcpts, msg), = inbox.messages
    assert rcpts == ["sales@example.org"] and "销售部 (sales)" in msg["Subject"]
    assert "企业客户/网络服务/" in msg.get_content()


def test_an_ambiguous_name_in_an_older_vault_is_an_error_naming_both(office):
    """Ids written before lookalikes were refused (entries without a display name keep their rule)
    may look alike: a lookup that could mean either names both and picks neither."""
    v = Vault.open(office.vault_dir)
    alice = v.act_as(identity.load_identity(office.ident("alice"), "correct horse battery staple"))
    office.keygen("b0b")
    key = identity.PublicKey.parse(office.keys["b0b"])
    rec = _member_record("b0b", key, ["staff"], "sales", "alice", at=v.clock.stamp())
    alice.commit("member.add", {"members/b0b.toml": records.dump_toml(alice.sign(rec))}, ref="b0b", obj="b0b",
                 subject={"key": key.line(), "roles": ["staff"], "dept": "sales"})
    assert "b0b" in authority.members(v)  # it counts: the rule it was written under allowed it
    res = office.run("member", "show", "BOB", ok=False)
    _refused(res, "ambiguous", "b0b", "bob")
    assert office.json("member", "show", "b0b")["name"] == "b0b"  # an exact id is never ambiguous


def test_a_display_name_written_into_a_member_file_by_hand_changes_nothing(office):
    """Someone who can write the directory edits a record: the history's name is shown, and check
    names the changed file."""
    path = office.vault_dir / "members" / "zhangsan.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('display_name = "张三"', 'display_name = "王五"'),
                    encoding="utf-8")
    assert office.json("member", "show", "zhangsan")["display_name"] == "张三"
    _refused(office.run("member", "show", "王五", ok=False), "no member")
    problems = json.loads(office.run("check", "--json", ok=False).stdout)["problems"]
    assert any("members/zhangsan.toml" in p for p in problems), problems


def test_rename_changes_the_display_name_never_the_id(office):
    _add(office, "lisi", "--display-name", "李四", key="l", ok=True)
    # Renaming to a lookalike of someone else is refused; to one's own lookalike is fine.
    _refused(office.run("member", "rename", "李四", "--display-name", "张 三", who="alice", ok=False), "looks like")
    out = office.json("member", "rename", "李四", "--display-name", "李 四", who="alice")
    assert out == {"name": "lisi", "display_name": "李 四"}
    assert office.json("member", "show", "李 四")["name"] == "lisi"
    # Only a supervisor renames.
    _refused(office.run("member", "rename", "lisi", "--display-name", "老李", who="bob", ok=False), "may not")
    rec = (office.vault_dir / "members" / "lisi.toml").read_text(encoding="utf-8")
    assert 'display_name = "李 四"' in rec and "[signature]" in rec
    assert office.json("check")["problems"] == []  # the rename is committed like any record


@pytest.mark.usefixtures("unjudged")
def test_the_replay_refuses_a_library_written_lookalike_rename(office):
    v = Vault.open(office.vault_dir)
    alice = v.act_as(identity.load_identity(office.ident("alice"), "correct horse battery staple"))
    rec = committed.load(v, "members/bob.toml")
    rec.pop("signature", None)
    rec["display_name"] = "张三"  # zhangsan's display name
    alice.commit("member.rename", {"members/bob.toml": records.dump_toml(alice.sign(rec))}, ref="bob", obj="bob",
                 subject={"display_name": "张三"})
    assert authority.members(v)["bob"]["display_name"] is None
    assert office.json("member", "show", "张三")["name"] == "zhangsan"
    assert any("looks like that of zhangsan" in p for p in audit.verify(v).problems)


@pytest.mark.usefixtures("unjudged")
def test_the_replay_refuses_a_library_written_policy_with_lookalike_names(office):
    """A supervisor's client that skips 'policy update''s check: the entry counts for nothing."""
    v = Vault.open(office.vault_dir)
    alice = v.act_as(identity.load_identity(office.ident("alice"), "correct horse battery staple"))
    data = {k: x for k, x in v.policy.data.items() if k != "signature"}
    data["names"] = {"departments": {"sales": "销售部", "marketing": "销 售 部"}}
    raw = records.dump_toml(alice.sign(data))
    n = authority.state(v)["policy_version"] + 1
    alice.commit("policy.update", {f"policy/{n}.toml": raw, "policy.toml": raw}, ref=str(n))
    assert "names" not in Vault.open(office.vault_dir).policy.data
    assert any("its names are refused" in p for p in audit.verify(v).problems)


def test_unassigned_code_points_are_refused_by_commands_and_left_to_the_writer_in_the_replay():
    unassigned = "\U000e0080"  # not assigned in any Unicode version so far
    with pytest.raises(InputError):
        names.display_name("张三" + unassigned)
    assert names.display_name("张三" + unassigned, strict=False) == "张三" + unassigned


# -- properties ----------------------------------------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_an_accepted_name_is_stable_and_holds_nothing_invisible(text):
    import unicodedata

    try:
        shown = names.display_name(text)
    except InputError:
        return
    assert names.display_name(shown) == shown  # normal form: accepting it again changes nothing
    assert 1 <= len(shown) <= names.MAX_DISPLAY and shown == shown.strip()
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in shown)
    # Whoever carries it is found by it, and by any spelling with the same look.
    assert names.resolve("member", shown, {"a": shown, "-": None}, listing="x") == "a"
    assert names.resolve("member", shown.casefold(), {"a": shown, "-": None}, listing="x") == "a"


def test_tables_of_chinese_names_line_up():
    from vault.cli import pad

    # A Han character takes two terminal columns: padding counts columns, not characters.
    assert pad("张三", 8) == "张三    " and pad("bob", 8) == "bob     " and pad("张三丰李四王五", 8) == "张三丰李四王五"
