"""A throw-away PostgreSQL 15 server for tests and benchmarks, started in a temporary directory.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user.
Nothing here skips: if the server cannot start, the caller fails with the server's own log.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise PostgresUnavailable("initdb not found: install PostgreSQL (apt-get install -y postgresql)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    directory: Path
    port: int
    bindir: Path
    superuser: str = "postgres"

    def url(self, database: str = "postgres", user: str | None = None) -> str:
        return f"postgresql+psycopg://{user or self.superuser}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> "PostgresServer":
        bindir = _bindir()
        directory = Path(tempfile.mkdtemp(prefix="clusterhub-pg-"))
        as_root = os.geteuid() == 0
        if as_root:
            shutil.chown(directory, "postgres", "postgres")
            os.chmod(directory, 0o700)
        server = cls(directory, _free_port(), bindir)
        data = directory / "data"
        server._run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                     "-E", "UTF8", "--locale=C", "--no-instructions"])
        options = (f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=on -c synchronous_commit=on -c max_connections=200 -c shared_buffers=128MB")
        server._run([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(directory / "server.log"),
                     "-w", "-t", "60", "start"])
        return server

    def _run(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=self.directory)
        if result.returncode != 0:
            log = ""
            log_path = self.directory / "server.log"
            if log_path.exists():
                log = log_path.read_text()[-2000:]
            raise PostgresUnavailable(f"{' '.join(argv)} failed: {result.stderr.strip()} {log}")

    def stop(self) -> None:
        data = self.directory / "data"
        if data.exists():
            try:
                # The data is thrown away: skip the shutdown checkpoint, which can take half a minute after
                # hundreds of test databases.
                self._run([str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
            except PostgresUnavailable:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise PostgresUnavailable(f"PostgreSQL did not accept connections on port {self.port}")
