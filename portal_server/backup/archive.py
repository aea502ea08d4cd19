"""One consistent archive of everything a county cannot lose (INTERFACES §1: `communitv backup` /
`communitv restore`), taken while the stack runs.

The archive is a gzip'd tar:

    db/communitv.db           SQLite, copied with SQLite's online backup API (a consistent snapshot
                              while the app writes), or
    db/communitv.pgdump       PostgreSQL, ``pg_dump --format=custom`` (one snapshot transaction)
    secrets/secret_key        signs box tokens, sessions; derives the MQTT server password and the PII key
    data/run/dynamic-security.json   the broker's accounts: every box's MQTT secret (hashed) and ACL roles
    data/...                  media (uploads, photos, speech, firmware), hls (meeting recordings, VOD),
                              demo-terminals.csv and the other files of the data folder
    manifest.json             written last: format, time, database kind, and size + sha256 of every member

Left out, because they are rebuilt: the TV page snapshots (tv/), logs, generated configs and the
brokers' and Redis's own state under run/ (presence and heartbeats are live data; retained
configs are sent again on every box's hello).

The archive is written to a temporary file next to the target and renamed only when complete,
so a full disk or a crash never leaves a half archive under the real name. Restore reads and
checks the whole archive before it writes anything, and refuses a target that is not empty.
"""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from portal_server.core.config import Settings

FORMAT = "communitv-backup/1"
MANIFEST = "manifest.json"
DYNSEC = "run/dynamic-security.json"
#: Top-level entries of the data folder that are rebuilt, never archived.
SKIP_TOP = {"run", "tv", "log", "secret_key", ".restoring"}
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is for the operator (Chinese + English)."""


@dataclass
class Result:
    """What a backup wrote: the archive, how many members and data bytes, how long it took."""
    path: Path
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    database: str = ""
    skipped: list[str] = field(default_factory=list)


# Where things are ---------------------------------------------------------------------------

def db_kind(url: str) -> str:
    """"sqlite" or "postgresql" for a SQLAlchemy URL."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme.startswith("postgresql"):
        return "postgresql"
    raise BackupError(f"不支持的数据库 / unsupported database URL scheme: {scheme}")


def sqlite_path(url: str) -> Path:
    """The database file of a sqlite:/// URL."""
    path = url.split("///", 1)[1] if "///" in url else ""
    if not path or path == ":memory:":
        raise BackupError("内存数据库无法备份 / an in-memory SQLite database cannot be backed up")
    return Path(path).resolve()


def pg_conninfo(url: str) -> str:
    """A libpq URL (pg_dump/pg_restore) from a SQLAlchemy one."""
    return "postgresql://" + url.split("://", 1)[1]


def pg_tool(name: str) -> str:
    """The newest installed PostgreSQL client tool (Debian keeps them per version)."""
    for cand in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise BackupError(f"找不到 {name}，请安装 postgresql-client / {name} not found: apt-get install postgresql-client")
    return found


def _disk_error(exc: OSError, where: Path) -> BackupError:
    if exc.errno == errno.ENOSPC:
        return BackupError(f"磁盘已满，备份未完成，没有留下不完整的文件 / the disk is full at {where}: "
                           f"backup not written (no partial archive left behind)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return BackupError(f"没有写入权限：{where} / cannot write to {where} (permission denied or read-only)")
    if exc.errno == errno.ENOENT:
        return BackupError(f"目录不存在：{where} / no such folder: {where}")
    return BackupError(f"备份写入失败 / backup failed writing {where}: {exc.strerror or exc}")


# Backup ---------------------------------------------------------------------------------------

class _HashingReader:
    """Feeds tarfile exactly ``size`` bytes of a file while hashing them. A file that shrinks under
    us (a live HLS segment being replaced) is padded with zeros rather than breaking the archive."""

    def __init__(self, fh, size: int):
        self.fh, self.left, self.sha = fh, size, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.fh.read(n) if n else b""
        if len(data) < n:
            data += b"\0" * (n - len(data))
        self.left -= len(data)
        self.sha.update(data)
        return data


def _add_file(tar: tarfile.TarFile, src: Path, name: str, entries: list) -> int:
    with open(src, "rb") as fh:
        st = os.fstat(fh.fileno())
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), st.st_mode & 0o777
        reader = _HashingReader(fh, st.st_size)
        tar.addfile(info, reader)
    entries.append({"path": name, "size": info.size, "sha256": reader.sha.hexdigest()})
    return info.size


def _add_bytes(tar: tarfile.TarFile, data: bytes, name: str, entries: list | None, mode: int = 0o600) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(dt.datetime.now().timestamp()), mode
    tar.addfile(info, io.BytesIO(data))
    if entries is not None:
        entries.append({"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})


def _dump_sqlite(url: str, out: Path) -> None:
    """SQLite's online backup API: a consistent copy while other connections read and write."""
    path = sqlite_path(url)
    if not path.is_file():
        raise BackupError(f"找不到数据库：{path} / no database at {path} (check COMMUNITV_DATA_DIR and "
                          f"COMMUNITV_DATABASE_URL)")
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        dst = sqlite3.connect(out)
        with dst:
            src.backup(dst)          # one step: a single read transaction, so one point in time
        dst.execute("PRAGMA journal_mode=DELETE")   # a self-contained file, no -wal beside it
        dst.close()
    finally:
        src.close()


def _dump_postgres(url: str, out: Path) -> None:
    r = subprocess.run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                        "--file", str(out), "--dbname", pg_conninfo(url)],
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise BackupError(f"pg_dump 失败 / pg_dump failed: {r.stderr.strip()[-500:]}")


def _read_dynsec(path: Path) -> bytes | None:
    """The broker's account file as it stands; Mosquitto rewrites it whole after each change."""
    for _ in range(10):
        try:
            data = path.read_bytes()
            json.loads(data)
            return data
        except FileNotFoundError:
            return None
        except ValueError:       # caught mid-rewrite: read again
            time.sleep(0.1)
    raise BackupError(f"无法读取 MQTT 账号文件 / cannot read a complete {path}")


def data_files(settings: Settings, exclude: list[Path] = ()) -> list[tuple[Path, str]]:
    """(file, archive name) of everything in the data folder that is archived."""
    root = settings.data_dir
    skip = set()
    if db_kind(settings.database_url) == "sqlite":
        db = sqlite_path(settings.database_url)
        skip |= {db, Path(str(db) + "-wal"), Path(str(db) + "-shm"), Path(str(db) + "-journal")}
    excluded = [Path(p).resolve() for p in exclude if p]
    out = []
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        rel_dir = d.relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [n for n in dirnames if n not in SKIP_TOP]
        dirnames[:] = [n for n in dirnames if not n.startswith("ctv-backup-")
                       and not any((d / n).resolve() == e for e in excluded)]
        dirnames.sort()
        for name in sorted(filenames):
            p = d / name
            if rel_dir == Path(".") and name in SKIP_TOP:
                continue
            if (p in skip or p.resolve() in excluded or not p.is_file() or p.is_symlink()
                    or name.startswith(".communitv-backup-")):
                continue
            out.append((p, "data/" + (rel_dir / name).as_posix()))
    return out


def create(settings: Settings, dest: Path, progress=None) -> Result:
    """Write the archive of ``settings``'s database and data folder to ``dest`` (atomically)."""
    started = time.monotonic()
    dest = Path(dest).absolute()
    kind = db_kind(settings.database_url)
    folder = dest.parent
    if not folder.is_dir():
        raise BackupError(f"目录不存在：{folder} / no such folder: {folder}")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".communitv-backup-", suffix=".part", dir=folder)
    except OSError as exc:
        raise _disk_error(exc, folder) from None
    tmp = Path(tmp_name)
    result = Result(dest, database=kind)
    try:
        with tempfile.TemporaryDirectory(prefix="ctv-backup-", dir=folder) as work:
            dump = Path(work) / ("communitv.db" if kind == "sqlite" else "communitv.pgdump")
            # The database first: media added after this instant is harmless; a box added after it
            # has a broker account without a row, which the fleet tolerates.
            (_dump_sqlite if kind == "sqlite" else _dump_postgres)(settings.database_url, dump)
            dynsec = _read_dynsec(settings.data_dir / DYNSEC)
            # Not the archives themselves (the backup folder may sit inside the data folder).
            exclude = [Path(settings.backup_dir) if settings.backup_dir else None, dest,
                       folder if folder.resolve() != settings.data_dir else None]
            files = data_files(settings, exclude=exclude)
            entries: list[dict] = []
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar:
                    result.bytes += _add_file(tar, dump, "db/" + dump.name, entries)
                    _add_bytes(tar, settings.secret_key.encode(), "secrets/secret_key", entries)
                    if dynsec is not None:
                        _add_bytes(tar, dynsec, "data/" + DYNSEC, entries)
                    for i, (path, name) in enumerate(files):
                        try:
                            result.bytes += _add_file(tar, path, name, entries)
                        except FileNotFoundError:     # removed since we listed it (an old segment)
                            result.skipped.append(name)
                        if progress:
                            progress(i + 1, len(files))
                    manifest = {"format": FORMAT, "created_at": dt.datetime.now(dt.UTC).isoformat(),
                                "database": kind, "source_data_dir": str(settings.data_dir),
                                "files": entries}
                    _add_bytes(tar, json.dumps(manifest, ensure_ascii=False, indent=1).encode(), MANIFEST,
                               None, 0o644)
                raw.flush()
                os.fsync(raw.fileno())
            result.files = len(entries)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _disk_error(exc, dest) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    result.seconds = time.monotonic() - started
    return result


# Checking and restoring -----------------------------------------------------------------------

def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and p.parts[:1] in (("db",), ("secrets",), ("data",))


def verify(src: Path) -> dict:
    """Read the whole archive; return its manifest when every member is listed and matches its
    size and sha256 (and nothing is missing or extra); raise BackupError otherwise."""
    src = Path(src)
    if not src.is_file():
        raise BackupError(f"找不到备份文件：{src} / no such backup file: {src}")
    seen: dict[str, tuple[int, str]] = {}
    manifest = None
    try:
        with tarfile.open(src, mode="r:gz") as tar:
            for m in tar:
                if m.name == MANIFEST:
                    manifest = json.loads(tar.extractfile(m).read())
                    continue
                if not m.isfile() or not _safe_name(m.name):
                    raise BackupError(f"备份文件含有异常条目 / unexpected entry in the archive: {m.name}")
                sha, size, fh = hashlib.sha256(), 0, tar.extractfile(m)
                while chunk := fh.read(CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
                seen[m.name] = (size, sha.hexdigest())
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise BackupError(f"备份文件已损坏或不完整，未做任何恢复 / the archive is damaged or truncated, "
                          f"nothing was restored: {exc}") from None
    if manifest is None or manifest.get("format") != FORMAT:
        raise BackupError("备份文件缺少清单，可能不完整 / the archive has no manifest (truncated or not a "
                          "CommuniTV backup): nothing was restored")
    listed = {e["path"]: (e["size"], e["sha256"]) for e in manifest["files"]}
    bad = sorted(n for n in set(listed) | set(seen) if listed.get(n) != seen.get(n))
    if bad:
        raise BackupError(f"备份文件校验失败（{len(bad)} 个文件不符），未做任何恢复 / the archive fails its "
                          f"checksums ({', '.join(bad[:5])}): it was edited or damaged; nothing was restored")
    return manifest


def target_problem(settings: Settings, kind: str) -> str | None:
    """Why the target cannot take a restore (None when the data folder and database are empty)."""
    if db_kind(settings.database_url) != kind:
        return (f"备份来自 {kind} 数据库，而目标是 {db_kind(settings.database_url)} / the archive holds a {kind} "
                f"database but COMMUNITV_DATABASE_URL is {db_kind(settings.database_url)}")
    root = settings.data_dir
    if root.exists():
        used = [p for p in root.rglob("*") if p.is_file() or p.is_symlink()]
        if used:
            return (f"目标数据目录不是空的：{root}（例如 {used[0].relative_to(root)}），为避免覆盖，恢复已拒绝 / "
                    f"the data folder {root} is not empty (e.g. {used[0].relative_to(root)}): restore only "
                    f"into an empty one")
    if kind == "sqlite":
        db = sqlite_path(settings.database_url)
        if db.exists() and db.stat().st_size:
            return f"目标数据库已存在：{db} / the database {db} already exists: restore only into an empty one"
    else:
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.exc import SQLAlchemyError
        eng = create_engine(settings.database_url)
        try:
            tables = inspect(eng).get_table_names()
        except SQLAlchemyError as exc:
            return f"无法连接目标数据库 / cannot reach the target database: {str(exc)[:300]}"
        finally:
            eng.dispose()
        if tables:
            return (f"目标数据库不是空的（{len(tables)} 张表）/ the target database is not empty ({len(tables)} "
                    f"tables): restore only into an empty database")
    return None


def restore(settings: Settings, src: Path, progress=None) -> dict:
    """Check ``src`` completely, check the target is empty, then write the data folder and the
    database. Returns the manifest."""
    manifest = verify(src)
    problem = target_problem(settings, manifest["database"])
    if problem:
        raise BackupError(problem)
    root = settings.data_dir
    root.mkdir(parents=True, exist_ok=True)
    kind = manifest["database"]
    total = len(manifest["files"])
    with tempfile.TemporaryDirectory(prefix=".restoring-", dir=root) as work:
        dump = None
        with tarfile.open(src, mode="r:gz") as tar:
            for i, m in enumerate(tar):
                if m.name == MANIFEST:
                    continue
                if m.name.startswith("db/"):
                    dump = Path(work) / PurePosixPath(m.name).name
                    target, mode = dump, 0o600
                elif m.name == "secrets/secret_key":
                    target, mode = root / "secret_key", 0o600
                else:
                    target, mode = root / PurePosixPath(m.name).relative_to("data"), m.mode or 0o644
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(m) as fh, open(target, "wb") as out:
                    shutil.copyfileobj(fh, out, CHUNK)
                os.chmod(target, mode & 0o777)
                os.utime(target, (m.mtime, m.mtime))
                if progress:
                    progress(i + 1, total)
        if dump is None:
            raise BackupError("备份文件中没有数据库 / the archive holds no database")
        if kind == "sqlite":
            db = sqlite_path(settings.database_url)
            db.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(dump), db)
        else:
            r = subprocess.run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                                "--dbname", pg_conninfo(settings.database_url), str(dump)],
                               capture_output=True, text=True, timeout=3600)
            if r.returncode != 0:
                raise BackupError(f"pg_restore 失败 / pg_restore failed: {r.stderr.strip()[-500:]}")
    return manifest
