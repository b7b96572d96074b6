"""A PostgreSQL cluster of the project's own, under the stack's folder, run as the ``postgres`` user.

Postgres refuses to run as root; when we are root, every server command runs as ``postgres``. The postmaster is
started directly rather than through ``pg_ctl start``, which daemonizes it: a supervisor must be its parent for
the kernel to stop it when the supervisor dies.
"""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from kernel.settings import Settings
from zixly.stack.errors import StackError
from zixly.stack.ports import WantedPort, ensure_free
from zixly.stack.processes import PidFile, spawn

DB_USER = "zixly"
DB_PASSWORD = "zixly"  # a local development cluster on loopback only; production passes DATABASE_URL
DB_NAME = "zixly"


@dataclass
class PostgresStatus:
    running: bool
    pid: int | None
    address: str
    data_dir: Path
    version: str | None


def find_bindir() -> Path:
    """The newest installed server's bin folder (Debian keeps them under /usr/lib/postgresql/<major>/bin)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name),
        reverse=True,
    )
    if candidates:
        return candidates[0].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).resolve().parent
    raise StackError("no PostgreSQL server is installed: apt-get install postgresql")


class PostgresServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home / "postgres"
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_path = settings.home / "logs" / "postgres.log"
        self.pidfile = PidFile(self.data_dir / "postmaster.pid", command="postgres")

    @property
    def _as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_postgres, *command], check=True, capture_output=True, text=True, cwd="/")

    def status(self) -> PostgresStatus:
        pid = self.pidfile.alive_pid()
        version = None
        version_file = self.data_dir / "PG_VERSION"
        if version_file.exists():
            version = version_file.read_text().strip()
        return PostgresStatus(
            running=pid is not None,
            pid=pid,
            address=f"127.0.0.1:{self.settings.postgres_port}",
            data_dir=self.data_dir,
            version=version,
        )

    def _prepare_folders(self) -> None:
        for folder in (self.root, self.socket_dir, self.log_path.parent):
            folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            for folder in (self.root, self.socket_dir):
                os.chown(folder, postgres.pw_uid, postgres.pw_gid)
            if not self.log_path.exists():
                self.log_path.touch()
            os.chown(self.log_path, postgres.pw_uid, postgres.pw_gid)
            self._check_reachable_by_postgres()

    def _check_reachable_by_postgres(self) -> None:
        if not self._postgres_can_write_root():
            # A checkout under a private folder (mktemp -d, a 0700 home): let others traverse, not read, its parents.
            for parent in self.root.parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    os.chmod(parent, mode | stat.S_IXOTH)
        if not self._postgres_can_write_root():
            raise StackError(
                f"the postgres user cannot reach {self.root}; make its parent folders traversable "
                "(chmod o+x) or set ZIXLY_HOME to a folder it can reach"
            )

    def _postgres_can_write_root(self) -> bool:
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.root)], check=False, cwd="/")
        return probe.returncode == 0

    def _init_cluster(self, bindir: Path) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        password_file = self.root / "initdb.pw"
        password_file.write_text(DB_PASSWORD + "\n")
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(password_file, postgres.pw_uid, postgres.pw_gid)
        try:
            self._run(
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                DB_USER,
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "--encoding=UTF8",
                "--no-locale",
            )
        finally:
            password_file.unlink(missing_ok=True)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# zixly local stack\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.settings.postgres_port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "work_mem = 16MB\n"
                "maintenance_work_mem = 256MB\n"
                "max_wal_size = 2GB\n"
                "checkpoint_timeout = 15min\n"
            )

    def start(self, dies_with_parent: bool = False) -> bool:
        """Start the cluster unless it runs, and make sure the project's database exists.

        ``dies_with_parent``: the postmaster makes a fast shutdown (SIGINT) when this process dies.
        """
        if self.pidfile.alive_pid() is not None:
            self._ensure_database()
            return False
        bindir = find_bindir()
        self._prepare_folders()
        self._init_cluster(bindir)
        ensure_free([WantedPort(self.settings.postgres_port, "Postgres", "ZIXLY_POSTGRES_PORT")])
        # A postmaster.pid naming a pid that runs something else now (after a reboot) makes Postgres refuse to start.
        self.pidfile.remove()
        process = spawn(
            [
                str(bindir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.settings.postgres_port),
                "-k",
                str(self.socket_dir),
            ],
            self.log_path,
            dies_with_parent=signal.SIGINT if dies_with_parent else None,
            user="postgres" if os.geteuid() == 0 else None,
        )
        self._ensure_database(process)
        return True

    def _ensure_database(self, process: "subprocess.Popen[bytes] | None" = None) -> None:
        deadline = time.monotonic() + 60
        while True:
            if process is not None and process.poll() is not None:
                raise StackError(
                    f"Postgres exited with {process.returncode}: {_last_line(self.log_path)} (see {self.log_path})"
                )
            try:
                with psycopg.connect(self._admin_url("postgres"), autocommit=True, connect_timeout=3) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def _admin_url(self, database: str) -> str:
        return f"postgresql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{self.settings.postgres_port}/{database}"

    def stop(self) -> bool:
        if self.pidfile.alive_pid() is None:
            return False
        self._run(str(find_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        return True


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"
