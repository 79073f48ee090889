"""A throw-away PostgreSQL server on 127.0.0.1, from Debian's postgresql package.

Started on a free port with its data under /tmp (as user `postgres` when run as root)
and removed afterwards. `.ci/run` installs the package; elsewhere `postgres_missing()`
says why it cannot run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

from tests.support.ports import free_port


def postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Postgres:
    """A throw-away PostgreSQL server on 127.0.0.1 (as user `postgres` when run as root)."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        """With `tls` (certificate, key files): TLS only, every other connection refused."""
        self.tls = tls
        self.dir = Path(tempfile.mkdtemp(prefix="clinic-pg-"))
        self.port = free_port()
        self.db = "rasa"
        self._demote = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)

            def demote() -> None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

            self._demote = demote

    def _run(self, *args: str) -> None:
        subprocess.run(
            args, check=True, capture_output=True, preexec_fn=self._demote, cwd="/", timeout=120
        )

    def start(self) -> Postgres:
        data = self.dir / "data"
        if not data.exists():
            self._run(postgres_bin("initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c fsync=off -c full_page_writes=off"
        )
        if self.tls:
            options += self._tls_options(data)
        self._run(postgres_bin("pg_ctl"), "-D", str(data), "-w", "-t", "60",
                  "-l", str(self.dir / "postgres.log"), "-o", options, "start")  # fmt: skip
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :db"), {"db": self.db}
            ).first()
            if not exists:
                connection.execute(sa.text(f"CREATE DATABASE {self.db}"))
        engine.dispose()
        return self

    def _tls_options(self, data: Path) -> str:
        """Copies the certificate and key where postgres may read them; hostssl only."""
        cert, key = self.dir / "server.crt", self.dir / "server.key"
        shutil.copy(self.tls[0], cert)
        shutil.copy(self.tls[1], key)
        key.chmod(0o600)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (cert, key):
                os.chown(path, user.pw_uid, user.pw_gid)
        hba = data / "pg_hba.conf"
        hba.write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
        return f" -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(postgres_bin("pg_ctl"), "-D", str(self.dir / "data"), "-w", "-m",
                      "immediate", "stop")  # fmt: skip

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: str | None = None) -> str:
        tls = "?sslmode=require" if self.tls else ""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db or self.db}{tls}"

    def store_kwargs(self) -> dict:
        return {"dialect": "postgresql", "host": "127.0.0.1", "port": self.port,
                "db": self.db, "username": "postgres"}  # fmt: skip

    def endpoints_section(self, startup_wait: float = 5) -> str:
        return (
            "tracker_store:\n  type: store.tracker_store.ClinicTrackerStore\n"
            f"  dialect: postgresql\n  url: 127.0.0.1\n  port: {self.port}\n"
            f"  db: {self.db}\n  username: postgres\n  startup_wait: {startup_wait}\n"
        )


def postgres_missing() -> str | None:
    """Why PostgreSQL tests cannot run here, or None."""
    if not postgres_bin("initdb") or not postgres_bin("pg_ctl"):
        return "PostgreSQL's initdb is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs the `postgres` user (apt-get install postgresql)"
    return None
