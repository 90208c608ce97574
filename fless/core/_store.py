"""The function store: one LMDB environment with modules, functions, code and subjects.

Every change is one write transaction, committed (and synced) before the
call returns, so a crash at any moment leaves either all of a change or none
of it: a function is never stored without its code. Code blobs are
content-addressed by SHA-256 and shared by functions with the same code; a
reference count drops a blob when its last function goes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import lmdb

from ._errors import AlreadyExists, BadRequest, DefaultModuleKept, NameTaken, NotFound
from ._records import (
    DEFAULT_MODULE,
    ROLE_ADMIN,
    ROLE_USER,
    FunctionRecord,
    Subject,
    check_name,
    is_name,
    shown,
)

GiB = 1 << 30
# How many decoded function records a process keeps for reads of the same one.
DECODED_KEPT = 256


def key_hash(key: str) -> str:
    """The stored form of an API key.

    Keys are 256 random bits, so a plain SHA-256 cannot be reversed by
    guessing; a slow password hash would only add latency to every request.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key."""
    return "fl_" + secrets.token_urlsafe(32)


def _named(kind: str, name: str) -> None:
    """Refuses a lookup by a name no record can have (NotFound).

    Only valid names are ever stored; an empty or 600-byte one would reach
    LMDB as a key it refuses (a 500), and one holding "/" could reach into
    another module's functions.
    """
    if not is_name(name):
        raise NotFound(f"no {kind} is named {shown(name)}")


def _fn_key(module: str, name: str) -> bytes:
    return f"{module}/{name}".encode()


class Store:
    """The core's persistent state.

    Open it after any fork (LMDB forbids use across fork). Thread-safe.

    Args:
        path: directory of the LMDB environment (created if missing).
        map_size: the most the environment may grow to (sparse on disk).
    """

    def __init__(self, path: Path, map_size: int = 16 * GiB) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._env = lmdb.open(str(path), map_size=map_size, max_dbs=16, subdir=True)
        self._modules = self._env.open_db(b"modules")
        self._functions = self._env.open_db(b"functions")
        self._code = self._env.open_db(b"code")
        self._refs = self._env.open_db(b"code_refs")
        self._subjects = self._env.open_db(b"subjects")
        self._keys = self._env.open_db(b"keys")
        # "generation": bumped by every change to a function, so a process
        # that follows the functions (the event part) rereads them only then.
        self._meta = self._env.open_db(b"meta")
        # APP scripts by name: {"id", "name", "script" (parsed), "created", "updated"}.
        self._scripts = self._env.open_db(b"app_scripts")
        # Secrets by "owner/name": {"sealed": {...} (``_secrets``), "created", "updated"}.
        self._secrets = self._env.open_db(b"secrets")
        # The records last decoded, with the bytes they came from: one read
        # again unchanged (every invocation reads its function's) is not
        # decoded again, which cost it about 20 us. The bytes are compared,
        # so a change by any process is seen at once.
        self._decoded: dict[bytes, tuple[bytes, FunctionRecord]] = {}
        # The same for the subjects keys authenticate, by their stored bytes
        # (Subject is frozen): every request decoded its caller's again.
        self._subjects_decoded: dict[bytes, Subject] = {}
        with self._env.begin(write=True) as txn:
            if txn.get(DEFAULT_MODULE.encode(), db=self._modules) is None:
                txn.put(DEFAULT_MODULE.encode(), b"", db=self._modules)

    def close(self) -> None:
        """Closes the environment."""
        self._env.close()

    # -- modules ------------------------------------------------------------

    def list_modules(self) -> list[str]:
        """Every module's name, sorted."""
        with self._env.begin(db=self._modules) as txn:
            return [k.decode() for k in txn.cursor().iternext(values=False)]

    def has_module(self, module: str) -> bool:
        """Whether ``module`` exists."""
        if not is_name(module):
            return False
        with self._env.begin(db=self._modules) as txn:
            return txn.get(module.encode()) is not None

    def create_module(self, module: str) -> None:
        """Creates an empty module.

        Raises:
            InvalidName: invalid name.  NameTaken: a module of that name exists.
        """
        check_name("module", module)
        with self._env.begin(write=True) as txn:
            if not txn.put(module.encode(), b"", db=self._modules, overwrite=False):
                raise NameTaken(f"module {module} already exists", "has already been taken")

    def rename_module(self, module: str, new: str) -> list[FunctionRecord]:
        """Renames a module and moves its functions; returns them as renamed."""
        check_name("module", new)
        _named("module", module)
        if module == DEFAULT_MODULE:
            raise DefaultModuleKept("the default module _ cannot be renamed")
        with self._env.begin(write=True) as txn:
            if txn.get(module.encode(), db=self._modules) is None:
                raise NotFound(f"module {module} not found")
            if not txn.put(new.encode(), b"", db=self._modules, overwrite=False):
                raise NameTaken(f"module {new} already exists", "has already been taken")
            txn.delete(module.encode(), db=self._modules)
            moved = []
            self._bump(txn)
            for record in self._functions_in(txn, module):
                txn.delete(_fn_key(module, record.name), db=self._functions)
                renamed = dataclasses.replace(record, module=new)
                txn.put(_fn_key(new, record.name), renamed.encode(), db=self._functions)
                moved.append(renamed)
        return moved

    def delete_module(self, module: str) -> list[FunctionRecord]:
        """Deletes a module with its functions; returns the functions deleted."""
        _named("module", module)
        if module == DEFAULT_MODULE:
            raise DefaultModuleKept("the default module _ cannot be deleted")
        with self._env.begin(write=True) as txn:
            if not txn.delete(module.encode(), db=self._modules):
                raise NotFound(f"module {module} not found")
            gone = list(self._functions_in(txn, module))
            self._bump(txn)
            for record in gone:
                txn.delete(_fn_key(module, record.name), db=self._functions)
                self._unref(txn, record.hash)
        return gone

    # -- functions ----------------------------------------------------------

    def _functions_in(self, txn: lmdb.Transaction, module: str) -> Iterator[FunctionRecord]:
        prefix = f"{module}/".encode()
        cursor = txn.cursor(db=self._functions)
        if not cursor.set_range(prefix):
            return
        for key, value in cursor:
            if not bytes(key).startswith(prefix):
                break
            yield FunctionRecord.decode(bytes(value))

    def list_functions(self, module: str) -> list[FunctionRecord]:
        """The functions of a module, by name.

        Raises:
            NotFound: no such module.
        """
        _named("module", module)
        with self._env.begin() as txn:
            if txn.get(module.encode(), db=self._modules) is None:
                raise NotFound(f"module {module} not found")
            return list(self._functions_in(txn, module))

    def get_function(self, module: str, name: str) -> FunctionRecord:
        """One function's record.

        Raises:
            NotFound: naming the module or the function that is missing.
        """
        _named("module", module)
        _named("function", name)
        key = _fn_key(module, name)
        with self._env.begin() as txn:
            raw = txn.get(key, db=self._functions)
            if raw is not None:
                return self._decode(key, raw)
            if txn.get(module.encode(), db=self._modules) is None:
                raise NotFound(f"module {module} not found")
        raise NotFound(f"function {module}/{name} not found")

    def _decode(self, key: bytes, raw: bytes) -> FunctionRecord:
        known = self._decoded.get(key)
        if known is not None and known[0] == raw:
            return known[1]
        record = FunctionRecord.decode(raw)
        if len(self._decoded) >= DECODED_KEPT:
            self._decoded.clear()
        self._decoded[key] = (raw, record)
        return record

    def get_code(self, sha: str) -> bytes:
        """The code blob with this SHA-256."""
        with self._env.begin(db=self._code) as txn:
            raw = txn.get(sha.encode())
        if raw is None:
            raise NotFound(f"code {sha} not found")
        return bytes(raw)

    def put_function(
        self, record: FunctionRecord, code: bytes | None, *, replace: str | None = None
    ) -> None:
        """Stores a new function, or replaces one, with its code, atomically.

        Args:
            record: the function; ``record.hash`` names its code.
            code: the blob, unless it is already stored (an update without code).
            replace: the name of the function this record replaces (for an
                update or rename), or None to create.

        Raises:
            NotFound: module or replaced function missing.
            AlreadyExists: a function of the new name exists (``NameTaken``
                for a rename).
        """
        with self._env.begin(write=True) as txn:
            if txn.get(record.module.encode(), db=self._modules) is None:
                raise NotFound(f"module {record.module} not found")
            new_key = _fn_key(record.module, record.name)
            old: FunctionRecord | None = None
            if replace is not None:
                raw = txn.get(_fn_key(record.module, replace), db=self._functions)
                if raw is None:
                    raise NotFound(f"function {record.module}/{replace} not found")
                old = FunctionRecord.decode(raw)
            if (replace is None or replace != record.name) and txn.get(
                new_key, db=self._functions
            ) is not None:
                taken = f"function {record.module}/{record.name} already exists"
                # FunLess's server: a new function's name taken is a 409, a
                # rename's a changeset's 422.
                if replace is None:
                    raise AlreadyExists(taken)
                raise NameTaken(taken, "has already been taken")
            if code is not None:
                txn.put(record.hash.encode(), code, db=self._code)
            elif txn.get(record.hash.encode(), db=self._code) is None:
                raise NotFound(f"code {record.hash} not found")
            self._ref(txn, record.hash)
            if old is not None:
                txn.delete(_fn_key(old.module, old.name), db=self._functions)
                self._unref(txn, old.hash)
            txn.put(new_key, record.encode(), db=self._functions)
            self._bump(txn)

    def delete_function(self, module: str, name: str) -> FunctionRecord:
        """Deletes a function; returns its last record."""
        _named("module", module)
        _named("function", name)
        with self._env.begin(write=True) as txn:
            raw = txn.pop(_fn_key(module, name), db=self._functions)
            if raw is None:
                if txn.get(module.encode(), db=self._modules) is None:
                    raise NotFound(f"module {module} not found")
                raise NotFound(f"function {module}/{name} not found")
            record = FunctionRecord.decode(raw)
            self._unref(txn, record.hash)
            self._bump(txn)
        return record

    def generation(self) -> int:
        """A number that changes whenever any function is created, changed or deleted."""
        with self._env.begin(db=self._meta) as txn:
            return int(txn.get(b"generation", b"0"))

    def all_functions(self) -> list[FunctionRecord]:
        """Every function of every module."""
        with self._env.begin(db=self._functions) as txn:
            return [FunctionRecord.decode(bytes(v)) for v in txn.cursor().iternext(keys=False)]

    def _bump(self, txn: lmdb.Transaction) -> None:
        count = int(txn.get(b"generation", b"0", db=self._meta))
        txn.put(b"generation", str(count + 1).encode(), db=self._meta)

    def _ref(self, txn: lmdb.Transaction, sha: str) -> None:
        count = int(txn.get(sha.encode(), b"0", db=self._refs))
        txn.put(sha.encode(), str(count + 1).encode(), db=self._refs)

    def _unref(self, txn: lmdb.Transaction, sha: str) -> None:
        count = int(txn.get(sha.encode(), b"1", db=self._refs)) - 1
        if count <= 0:
            txn.delete(sha.encode(), db=self._refs)
            txn.delete(sha.encode(), db=self._code)
        else:
            txn.put(sha.encode(), str(count).encode(), db=self._refs)

    def has_code(self, sha: str) -> bool:
        """Whether a blob with this hash is stored (some function still uses it)."""
        with self._env.begin(db=self._code) as txn:
            return txn.get(sha.encode()) is not None

    def code_hashes(self) -> set[str]:
        """The hashes of every stored blob (for consistency checks)."""
        with self._env.begin(db=self._code) as txn:
            return {k.decode() for k in txn.cursor().iternext(values=False)}

    # -- APP scripts --------------------------------------------------------

    def put_script(
        self, name: str, script: dict[str, Any], replace: bool = False
    ) -> dict[str, Any]:
        """Stores a parsed APP script under ``name``; the stored entry.

        Args:
            name: the script's name.
            script: its parsed form (``_app.parse``).
            replace: replace the script of that name (which must exist), keeping
                its id; else create it (no script of that name may exist).

        Raises:
            BadRequest: invalid name.  AlreadyExists, NotFound: as ``replace`` says.
        """
        check_name("script", name)
        now = time.time()
        with self._env.begin(write=True) as txn:
            raw = txn.get(name.encode(), db=self._scripts)
            if raw is not None and not replace:
                raise NameTaken(f"APP script {name} already exists", "has already been taken")
            if raw is None and replace:
                raise NotFound(f"APP script {name} not found")
            old = (
                cbor2.loads(raw)
                if raw is not None
                else {"id": secrets.token_hex(16), "created": now}
            )
            entry = {
                "id": old["id"],
                "name": name,
                "script": script,
                "created": old["created"],
                "updated": now,
            }
            txn.put(name.encode(), cbor2.dumps(entry), db=self._scripts)
        return entry

    def get_script(self, name: str) -> dict[str, Any]:
        """The stored APP script ``name``.

        Raises:
            NotFound: no script of that name.
        """
        _named("APP script", name)
        with self._env.begin(db=self._scripts) as txn:
            raw = txn.get(name.encode())
        if raw is None:
            raise NotFound(f"APP script {name} not found")
        entry: dict[str, Any] = cbor2.loads(raw)
        return entry

    def list_scripts(self) -> list[dict[str, Any]]:
        """Every stored APP script, by name."""
        with self._env.begin(db=self._scripts) as txn:
            return [cbor2.loads(bytes(v)) for v in txn.cursor().iternext(keys=False)]

    def delete_script(self, name: str) -> None:
        """Removes the APP script ``name``.

        Raises:
            NotFound: no script of that name.
        """
        _named("APP script", name)
        with self._env.begin(write=True, db=self._scripts) as txn:
            if not txn.delete(name.encode()):
                raise NotFound(f"APP script {name} not found")

    # -- secrets --------------------------------------------------------------

    def put_secret(self, owner: str, name: str, sealed: dict[str, Any], most: int) -> bool:
        """Stores ``owner``'s sealed secret ``name``; whether it is new.

        Args:
            most: how many secrets ``owner`` may keep (a new one past it is refused).

        Raises:
            InvalidName: a bad name.  BadRequest: ``owner`` keeps ``most`` already.
        """
        check_name("secret", name)
        key = _fn_key(owner, name)
        now = time.time()
        with self._env.begin(write=True, db=self._secrets) as txn:
            raw = txn.get(key)
            if raw is None and sum(1 for _ in self._secrets_of(txn, owner)) >= most:
                raise BadRequest(f"{owner} keeps {most} secrets already; delete one first")
            created = now if raw is None else cbor2.loads(raw)["created"]
            entry = {"sealed": sealed, "created": created, "updated": now}
            txn.put(key, cbor2.dumps(entry))
        return raw is None

    def sealed_secret(self, owner: str, name: str) -> dict[str, Any] | None:
        """``owner``'s sealed secret ``name`` as ``put_secret`` kept it, or None."""
        if not is_name(owner) or not is_name(name):
            return None
        with self._env.begin(db=self._secrets) as txn:
            raw = txn.get(_fn_key(owner, name))
        if raw is None:
            return None
        sealed: dict[str, Any] = cbor2.loads(raw)["sealed"]
        return sealed

    def secret_entries(self, owner: str) -> list[dict[str, Any]]:
        """``owner``'s secrets by name: ``{"name", "created", "updated"}``, never a value."""
        with self._env.begin(db=self._secrets) as txn:
            return [
                {"name": name, "created": entry["created"], "updated": entry["updated"]}
                for name, entry in self._secrets_of(txn, owner)
            ]

    def _secrets_of(
        self, txn: lmdb.Transaction, owner: str
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        prefix = f"{owner}/".encode()
        cursor = txn.cursor(db=self._secrets)
        if not cursor.set_range(prefix):
            return
        for key, value in cursor:
            if not bytes(key).startswith(prefix):
                break
            yield bytes(key)[len(prefix) :].decode(), cbor2.loads(bytes(value))

    def reseal_secrets(
        self, reseal: Callable[[str, str, dict[str, Any]], dict[str, Any] | None]
    ) -> int:
        """Replaces each sealed secret ``reseal(owner, name, sealed)`` answers anew for; how many.

        One write transaction: every secret, or none (a value and its dates
        stay as they were otherwise).
        """
        changed = 0
        with self._env.begin(write=True, db=self._secrets) as txn:
            for key, value in list(txn.cursor()):
                owner, _, name = bytes(key).decode().partition("/")
                entry = cbor2.loads(bytes(value))
                sealed = reseal(owner, name, entry["sealed"])
                if sealed is not None:
                    txn.put(bytes(key), cbor2.dumps({**entry, "sealed": sealed}))
                    changed += 1
        return changed

    def delete_secret(self, owner: str, name: str) -> None:
        """Removes ``owner``'s secret ``name``.

        Raises:
            NotFound: ``owner`` has no secret of that name.
        """
        _named("secret", name)
        with self._env.begin(write=True, db=self._secrets) as txn:
            if not txn.delete(_fn_key(owner, name)):
                raise NotFound(f"secret {name} not found (for {owner})")

    # -- subjects -----------------------------------------------------------

    def create_subject(self, name: str, role: str = ROLE_USER) -> str:
        """Creates a subject with a new key; returns the key (not stored)."""
        check_name("subject", name)
        key = new_key()
        subject = Subject(name, role, key_hash(key), time.time())
        with self._env.begin(write=True) as txn:
            if not txn.put(name.encode(), subject.encode(), db=self._subjects, overwrite=False):
                raise NameTaken(f"subject {name} already exists", "has already been taken")
            txn.put(subject.key_hash.encode(), name.encode(), db=self._keys)
        return key

    def reset_key(self, name: str, keep: Callable[[str], object] | None = None) -> str:
        """Gives a subject a new key, invalidating the old one in the same transaction.

        Args:
            name: the subject.
            keep: called with the new key inside the write transaction, to
                save it elsewhere (the node's ``admin.key``). LMDB lets one
                writer at a time into the environment, across every process
                of the node, so two rotations at once cannot leave a file
                holding a key the store refuses; if ``keep`` raises, nothing
                changes and the old key stays valid.

        Returns:
            The new key (only its hash is stored).

        Raises:
            NotFound: no such subject.
        """
        key = new_key()
        with self._env.begin(write=True) as txn:
            raw = txn.get(name.encode(), db=self._subjects)
            if raw is None:
                raise NotFound(f"subject {name} not found")
            old = Subject.decode(raw)
            txn.delete(old.key_hash.encode(), db=self._keys)
            subject = Subject(name, old.role, key_hash(key), old.created)
            txn.put(name.encode(), subject.encode(), db=self._subjects)
            txn.put(subject.key_hash.encode(), name.encode(), db=self._keys)
            if keep is not None:
                keep(key)
        return key

    def delete_subject(self, name: str) -> Subject:
        """Revokes a user: its key stops working with the next request of any process.

        Every request looks its key up in LMDB, so no API process can hold a
        revoked key in a cache.

        Returns:
            The subject as it was.

        Raises:
            NotFound: no such subject.
            BadRequest: the subject is an admin (rotate its key instead, so
                the cluster always keeps an admin).
        """
        _named("subject", name)
        with self._env.begin(write=True) as txn:
            raw = txn.get(name.encode(), db=self._subjects)
            if raw is None:
                raise NotFound(f"subject {name} not found")
            subject = Subject.decode(raw)
            if subject.role == ROLE_ADMIN:
                raise BadRequest(
                    f"{name} is an admin and cannot be revoked; rotate its key instead "
                    "(fless admin key rotate)"
                )
            txn.delete(subject.key_hash.encode(), db=self._keys)
            txn.delete(name.encode(), db=self._subjects)
            # A revoked user's secrets go with it: a user made again under
            # the same name is someone else.
            for secret, _ in list(self._secrets_of(txn, name)):
                txn.delete(_fn_key(name, secret), db=self._secrets)
        return subject

    def list_subjects(self) -> list[Subject]:
        """Every subject, by name."""
        with self._env.begin(db=self._subjects) as txn:
            return [Subject.decode(v) for _, v in txn.cursor()]

    def has_subject(self, name: str) -> bool:
        """Whether a subject of that name exists."""
        if not is_name(name):
            return False
        with self._env.begin(db=self._subjects) as txn:
            return txn.get(name.encode()) is not None

    def authenticate(self, key: str) -> Subject | None:
        """The subject holding ``key``, or None.

        The lookup is by the key's hash; the stored hash is then compared in
        constant time, so no timing reveals how much of a key was right.
        """
        digest = key_hash(key)
        with self._env.begin() as txn:
            name = txn.get(digest.encode(), db=self._keys)
            if name is None:
                return None
            raw = txn.get(bytes(name), db=self._subjects)
        if raw is None:
            return None
        subject = self._subjects_decoded.get(raw)
        if subject is None:
            subject = Subject.decode(raw)
            if len(self._subjects_decoded) >= DECODED_KEPT:
                self._subjects_decoded.clear()
            self._subjects_decoded[raw] = subject
        return subject if hmac.compare_digest(subject.key_hash, digest) else None


__all__ = ["ROLE_ADMIN", "ROLE_USER", "Store", "key_hash", "new_key"]
