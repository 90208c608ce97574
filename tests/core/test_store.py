"""The LMDB store: modules, functions with shared code, subjects, atomic changes."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fless.core import (
    ROLE_ADMIN,
    AlreadyExists,
    BadRequest,
    FunctionRecord,
    NotFound,
    Store,
)


def record(module: str, name: str, code: bytes) -> FunctionRecord:
    now = time.time()
    return FunctionRecord(
        module=module,
        name=name,
        hash=hashlib.sha256(code).hexdigest(),
        size=len(code),
        abi="funless",
        memory_mib=64,
        timeout_ms=1000,
        http_allow=("a.example",),
        created=now,
        updated=now,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def test_default_module_exists_from_the_start(store: Store) -> None:
    assert store.list_modules() == ["_"]


def test_modules_create_rename_delete(store: Store) -> None:
    store.create_module("m1")
    with pytest.raises(AlreadyExists):
        store.create_module("m1")
    with pytest.raises(BadRequest, match="invalid module name"):
        store.create_module("bad-name")
    store.put_function(record("m1", "f", b"code"), b"code")
    moved = store.rename_module("m1", "m2")
    assert [(r.module, r.name) for r in moved] == [("m2", "f")]
    assert store.get_function("m2", "f").module == "m2"
    with pytest.raises(NotFound, match="module m1 not found"):
        store.get_function("m1", "f")
    gone = store.delete_module("m2")
    assert [r.name for r in gone] == ["f"]
    assert store.code_hashes() == set()
    with pytest.raises(BadRequest, match="cannot be deleted"):
        store.delete_module("_")
    with pytest.raises(BadRequest, match="cannot be renamed"):
        store.rename_module("_", "x")


def test_functions_share_code_and_the_last_one_frees_it(store: Store) -> None:
    one, two = record("_", "one", b"same"), record("_", "two", b"same")
    store.put_function(one, b"same")
    store.put_function(two, b"same")
    assert store.code_hashes() == {one.hash}
    store.delete_function("_", "one")
    assert store.get_code(one.hash) == b"same"
    assert store.has_code(one.hash)
    store.delete_function("_", "two")
    assert store.code_hashes() == set()
    assert not store.has_code(one.hash)


def test_duplicate_function_is_refused_and_changes_nothing(store: Store) -> None:
    store.put_function(record("_", "f", b"v1"), b"v1")
    with pytest.raises(AlreadyExists):
        store.put_function(record("_", "f", b"v2"), b"v2")
    assert store.get_function("_", "f").hash == hashlib.sha256(b"v1").hexdigest()
    assert store.code_hashes() == {hashlib.sha256(b"v1").hexdigest()}


def test_update_replaces_code_and_renames(store: Store) -> None:
    old = record("_", "f", b"v1")
    store.put_function(old, b"v1")
    new = dataclasses.replace(record("_", "g", b"v2"), created=old.created)
    store.put_function(new, b"v2", replace="f")
    assert [r.name for r in store.list_functions("_")] == ["g"]
    assert store.code_hashes() == {new.hash}
    with pytest.raises(NotFound, match="function _/f not found"):
        store.get_function("_", "f")


def test_a_record_changed_by_another_process_is_read_as_changed(
    store: Store, tmp_path: Path
) -> None:
    store.put_function(record("_", "f", b"v1"), b"v1")
    first = store.get_function("_", "f")
    assert store.get_function("_", "f") is first  # read again unchanged: not decoded again
    # Another API process, with the same files open, updates it.
    script = (
        "import dataclasses, sys; from pathlib import Path; from fless.core import Store\n"
        "store = Store(Path(sys.argv[1]))\n"
        "old = store.get_function('_', 'f')\n"
        "store.put_function(dataclasses.replace(old, memory_mib=128), b'v1', replace='f')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert store.get_function("_", "f").memory_mib == 128


def test_unknown_module_and_function_say_which(store: Store) -> None:
    with pytest.raises(NotFound, match="module nope not found"):
        store.get_function("nope", "f")
    with pytest.raises(NotFound, match="function _/f not found"):
        store.get_function("_", "f")
    with pytest.raises(NotFound, match="module nope not found"):
        store.put_function(record("nope", "f", b"x"), b"x")


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.create_module("m")
    rec = record("m", "f", b"\0asm-code")
    store.put_function(rec, b"\0asm-code")
    key = store.create_subject("alice")
    store.close()
    again = Store(tmp_path / "s")
    assert again.get_function("m", "f") == rec
    assert again.get_code(rec.hash) == b"\0asm-code"
    subject = again.authenticate(key)
    assert subject is not None and subject.name == "alice"


def test_keys_are_stored_hashed_and_checked(store: Store, tmp_path: Path) -> None:
    admin_key = store.create_subject("admin", ROLE_ADMIN)
    user_key = store.create_subject("bob")
    assert admin_key != user_key
    admin, bob = store.authenticate(admin_key), store.authenticate(user_key)
    assert admin is not None and admin.role == "admin"
    assert bob is not None and bob.role == "user"
    assert store.authenticate(user_key + "x") is None
    assert store.authenticate("") is None
    with pytest.raises(AlreadyExists):
        store.create_subject("bob")
    store.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "store").iterdir())
    assert user_key.encode() not in raw and admin_key.encode() not in raw


def test_reset_key_invalidates_the_old_one(store: Store) -> None:
    old = store.create_subject("admin", ROLE_ADMIN)
    new = store.reset_key("admin")
    assert store.authenticate(old) is None
    subject = store.authenticate(new)
    assert subject is not None and subject.role == "admin"


# Another API process of the node: its own Store on the same LMDB files.
_OTHER_PROCESS = """
import json, sys
from pathlib import Path
from fless.core._store import Store
store = Store(Path(sys.argv[1]))
if sys.argv[2] == "reset":
    new = store.reset_key("admin")
    store.delete_subject("bob")
else:
    new = store.create_subject("bob")
store.close()
print(new)
"""


def in_other_process(path: Path, action: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(path), action],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_key_reset_or_deleted_by_another_process_fails_at_once(
    store: Store, tmp_path: Path
) -> None:
    old = store.create_subject("admin", ROLE_ADMIN)
    bob = store.create_subject("bob")
    # Both keys checked once here, so their subjects are known decoded.
    assert store.authenticate(old) is not None and store.authenticate(bob) is not None
    new = in_other_process(tmp_path / "store", "reset")
    assert store.authenticate(old) is None
    assert store.authenticate(bob) is None
    subject = store.authenticate(new)
    assert subject is not None and subject.name == "admin" and subject.role == "admin"
    # The name bob again, a new subject: its old key stays refused.
    again = in_other_process(tmp_path / "store", "bob")
    assert store.authenticate(bob) is None
    assert store.authenticate(again) is not None


def test_delete_subject_revokes_its_key_and_spares_admins(store: Store) -> None:
    key = store.create_subject("bob")
    gone = store.delete_subject("bob")
    assert gone.name == "bob"
    assert store.authenticate(key) is None
    assert not store.has_subject("bob")
    with pytest.raises(NotFound):
        store.delete_subject("bob")
    admin_key = store.create_subject("root", ROLE_ADMIN)
    with pytest.raises(BadRequest, match="rotate"):
        store.delete_subject("root")
    assert store.authenticate(admin_key) is not None
    # The name is free again, with a new key.
    assert store.authenticate(store.create_subject("bob")) is not None


def test_app_scripts_are_created_replaced_listed_and_deleted(store: Store) -> None:
    first = {"tags": {"default": {"blocks": [], "followup": "fail"}}}
    second = {"tags": {"camera": {"blocks": [], "followup": "default"}}}
    created = store.put_script("edge", first)
    assert (created["name"], created["script"]) == ("edge", first)
    with pytest.raises(AlreadyExists, match="APP script edge already exists"):
        store.put_script("edge", second)
    with pytest.raises(NotFound, match="APP script other not found"):
        store.put_script("other", second, replace=True)
    replaced = store.put_script("edge", second, replace=True)
    assert replaced["id"] == created["id"] and replaced["script"] == second
    store.put_script("alpha", first)
    assert [s["name"] for s in store.list_scripts()] == ["alpha", "edge"]
    assert store.get_script("edge") == replaced
    store.delete_script("edge")
    with pytest.raises(NotFound):
        store.get_script("edge")
    with pytest.raises(NotFound):
        store.delete_script("edge")
    with pytest.raises(BadRequest, match="invalid script name"):
        store.put_script("no/slashes", first)
    with pytest.raises(NotFound):
        store.get_script("x" * 600)
