"""The study store: one SQLite file holding runs, prompts as sent, responses and labels.

Responses are immutable once written (triggers forbid UPDATE and DELETE), so every published
figure can be traced to the raw exchange. Labels live in their own tables keyed by classifier
version, so re-classifying never touches a response. Schema changes are an append-only list of
migrations recorded in the database itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probe.errors import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: stores are not locked
    fcntl = None  # type: ignore[assignment]


def utc_now() -> str:
    """UTC timestamp with microseconds, ISO 8601, sortable as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_M001_INITIAL = """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            probe_version TEXT NOT NULL,
            git_revision TEXT,
            topic_set_hash TEXT NOT NULL,
            target_json TEXT NOT NULL,
            params_json TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            jobs_planned INTEGER,
            jobs_sent INTEGER
        );
        CREATE TABLE prompts (
            prompt_key TEXT PRIMARY KEY,
            topic_id TEXT NOT NULL,
            prompt_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            lang TEXT NOT NULL,
            text TEXT NOT NULL,
            origin TEXT,
            reviewed INTEGER,
            topic_title TEXT,
            sensitive_to TEXT
        );
        CREATE TABLE responses (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            job_key TEXT NOT NULL,
            prompt_key TEXT NOT NULL REFERENCES prompts(prompt_key),
            model TEXT NOT NULL,
            base_url TEXT NOT NULL,
            topic_id TEXT NOT NULL,
            prompt_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            lang TEXT NOT NULL,
            sample INTEGER NOT NULL,
            params_json TEXT NOT NULL,
            system_prompt TEXT,
            outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'blocked', 'error')),
            content TEXT,
            reasoning TEXT,
            refusal TEXT,
            finish_reason TEXT,
            resolved_model TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms REAL,
            retries INTEGER NOT NULL DEFAULT 0,
            http_status INTEGER,
            error TEXT,
            request_json TEXT NOT NULL,
            response_json TEXT,
            started_at TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX responses_job ON responses(job_key, outcome);
        CREATE INDEX responses_run ON responses(run_id);
        CREATE INDEX responses_model ON responses(model, topic_id, lang);
        CREATE TRIGGER responses_no_update BEFORE UPDATE ON responses
        BEGIN SELECT RAISE(ABORT, 'responses are immutable'); END;
        CREATE TRIGGER responses_no_delete BEFORE DELETE ON responses
        BEGIN SELECT RAISE(ABORT, 'responses are immutable'); END;
        CREATE TABLE classifications (
            response_id TEXT NOT NULL REFERENCES responses(id),
            classifier TEXT NOT NULL,
            label TEXT NOT NULL,
            confidence REAL,
            probs_json TEXT,
            features_json TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (response_id, classifier)
        );
        CREATE TABLE human_labels (
            response_id TEXT NOT NULL REFERENCES responses(id),
            label TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            note TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX human_labels_response ON human_labels(response_id, created_at);
"""

# One row per job: its stored result (ok/blocked) if any, else its newest error.
_M002_LATEST_VIEW = """
        CREATE VIEW latest_responses AS
        SELECT r.* FROM responses r
        WHERE r.id = (
            SELECT r2.id FROM responses r2 WHERE r2.job_key = r.job_key
            ORDER BY (r2.outcome = 'error'), r2.created_at DESC, r2.id DESC LIMIT 1
        );
"""

# Append only: never edit or reorder a migration that has shipped.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("001_initial", _M001_INITIAL),
    ("002_latest_view", _M002_LATEST_VIEW),
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path | str, *, create: bool = True) -> sqlite3.Connection:
    """Open (and migrate) a store. Refuses a store written by a newer probe, a file that is
    not a probe store, and a path that cannot be a store, each with one line saying what to do.

    The connection may be handed to one other thread (the runner's writer thread), never
    used from two at once."""
    path = Path(path)
    if not create and not path.exists():
        raise StoreError(f"{path}: no such store; run `probe run --db {path}` first")
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a store file; pick a file for --db")
    if create and not path.parent.is_dir():
        what = "is not a directory" if path.parent.exists() else "does not exist"
        raise StoreError(f"{path}: directory {path.parent} {what}; create it or pick another --db")
    try:
        db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(
            f"{path}: cannot open the store ({exc}); check the path and its permissions"
        ) from exc
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        _check_probe_store(db, path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        migrate(db, path)
    except StoreError:
        db.close()
        raise
    except sqlite3.OperationalError as exc:
        db.close()
        raise StoreError(
            f"{path}: cannot open the store ({exc}); check the path and its permissions"
        ) from exc
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StoreError(f"{path}: not a probe store ({exc}); pick another --db") from exc
    return db


def _tables(db: sqlite3.Connection) -> set[str]:
    return {
        row[0]
        for row in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    }


def _check_probe_store(db: sqlite3.Connection, path: Path) -> None:
    """Never put probe's tables into somebody else's database."""
    tables = _tables(db)
    if tables and "schema_migrations" not in tables:
        raise StoreError(
            f"{path}: an SQLite database that is not a probe store (it has tables "
            f"{', '.join(sorted(tables)[:4])}); pick another --db"
        )
    _refuse_newer(_applied_versions(db), path)  # before anything could write to it


def _applied_versions(db: sqlite3.Connection) -> set[int]:
    if "schema_migrations" not in _tables(db):
        return set()
    return {row[0] for row in db.execute("SELECT version FROM schema_migrations")}


def _refuse_newer(applied: set[int], path: Path) -> None:
    newest = max(applied, default=0)
    if newest > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: store schema version {newest} is newer than this probe understands "
            f"({SCHEMA_VERSION}); upgrade probe (pip install -U probe)"
        )


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (trigger bodies contain semicolons)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Apply missing migrations, all in one write transaction.

    The applied versions are read again under the write lock, so two processes opening a new
    store at once cannot both apply the same migration; an up-to-date store is not written."""
    applied = _applied_versions(db)
    _refuse_newer(applied, path)
    if all(v in applied for v in range(1, SCHEMA_VERSION + 1)):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        applied = _applied_versions(db)
        _refuse_newer(applied, path)
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for version, (name, sql) in enumerate(MIGRATIONS, start=1):
            if version in applied:
                continue
            for statement in _statements(sql):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, utc_now()),
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@dataclass(frozen=True)
class PromptRow:
    prompt_key: str
    topic_id: str
    prompt_id: str
    kind: str
    lang: str
    text: str
    origin: str | None
    reviewed: bool | None
    topic_title: str | None
    sensitive_to: str | None


def insert_run(db: sqlite3.Connection, row: dict[str, Any]) -> None:
    _insert(db, "runs", row)


def finish_run(db: sqlite3.Connection, run_id: str, jobs_sent: int) -> None:
    db.execute(
        "UPDATE runs SET ended_at = ?, jobs_sent = ? WHERE id = ?", (utc_now(), jobs_sent, run_id)
    )


def forget_empty_run(db: sqlite3.Connection, run_id: str) -> bool:
    """Remove a run row that stored no response (a run stopped by a bad key, an unknown model
    or an unreachable endpoint leaves no trace). Returns whether it was removed."""
    with transaction(db):
        if db.execute("SELECT 1 FROM responses WHERE run_id = ? LIMIT 1", (run_id,)).fetchone():
            return False
        db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    return True


def is_empty(db: sqlite3.Connection) -> bool:
    """No run, prompt, response or label: a store only its schema was written to."""
    return not any(
        db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
        for table in ("runs", "prompts", "responses", "classifications", "human_labels")
    )


def remove_store_files(path: Path) -> None:
    """Delete a store and its WAL side files (only for a store this process just created)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):  # e.g. a parent that is a file: nothing to remove
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class StoreLock:
    """An exclusive advisory lock on a store for the length of one `probe run`.

    Two sweeps writing the same store at once would each send the jobs the other has not
    stored yet, so the second one is refused. flock(2) on the store file itself leaves no lock
    file behind and dies with the process (a SIGKILL never leaves a stale lock). flock and
    SQLite's fcntl locks are independent on Linux, but closing *any* descriptor of the file
    drops the process's fcntl locks, so `release` must come after the SQLite connection is
    closed; the runner does exactly that.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        if fcntl is None:
            return self
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StoreError(
                f"{self.path}: another `probe run` is writing to this store; wait for it to "
                "finish (or stop it) and run again, or pick another --db"
            ) from exc
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def upsert_prompts(db: sqlite3.Connection, rows: Sequence[PromptRow]) -> None:
    with transaction(db):
        _upsert_prompts(db, rows)


def _upsert_prompts(db: sqlite3.Connection, rows: Sequence[PromptRow]) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO prompts VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (
                r.prompt_key,
                r.topic_id,
                r.prompt_id,
                r.kind,
                r.lang,
                r.text,
                r.origin,
                None if r.reviewed is None else int(r.reviewed),
                r.topic_title,
                r.sensitive_to,
            )
            for r in rows
        ],
    )


def insert_response(
    db: sqlite3.Connection, row: dict[str, Any], *, prompts: Sequence[PromptRow] = ()
) -> None:
    """Write one response in its own transaction: a crash loses at most what was in flight.

    `prompts` are upserted in the same transaction (the runner passes them with its first
    response, so a run that stores nothing writes no prompt either)."""
    with transaction(db):
        if prompts:
            _upsert_prompts(db, prompts)
        _insert(db, "responses", row)


def done_job_keys(db: sqlite3.Connection, keys: Sequence[str]) -> set[str]:
    """The jobs among `keys` that already have a result (ok or blocked)."""
    done: set[str] = set()
    chunk = 500
    for start in range(0, len(keys), chunk):
        part = list(keys[start : start + chunk])
        marks = ",".join("?" * len(part))
        done.update(
            row[0]
            for row in db.execute(
                f"SELECT DISTINCT job_key FROM responses WHERE outcome IN ('ok','blocked') "
                f"AND job_key IN ({marks})",
                part,
            )
        )
    return done


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ",".join(row)
    marks = ",".join("?" * len(row))
    values = [
        json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v for v in row.values()
    ]
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)
