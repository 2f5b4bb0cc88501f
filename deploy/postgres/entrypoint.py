#!/usr/bin/python3
"""Start PostgreSQL; on the first start with an empty data directory, create the cluster and run the init scripts.

The interface of the postgres image, so that the compose file reads the same: ``postgres [-c name=value …]``
as the command, ``POSTGRES_PASSWORD`` (required the first time) and ``POSTGRES_USER`` for the superuser,
and every ``*.sh`` / ``*.sql`` under /docker-entrypoint-initdb.d run once, against a server that listens on
its socket only (so a health check over TCP stays unready until they are done).
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(os.environ.get("PGDATA", "/var/lib/postgresql/data"))
SOCKETS = "/var/run/postgresql"
INIT_SCRIPTS = Path("/docker-entrypoint-initdb.d")


def say(message: str) -> None:
    print(f"juwei-postgres: {message}", file=sys.stderr, flush=True)


def initialise(superuser: str) -> None:
    password = os.environ.get("POSTGRES_PASSWORD", "")
    if not password:
        say("the data directory is empty and POSTGRES_PASSWORD is not set: cannot create the cluster")
        sys.exit(2)
    with tempfile.NamedTemporaryFile("w", delete=False) as pwfile:
        pwfile.write(password + "\n")
    try:
        subprocess.run(
            ["initdb", "-D", str(DATA), "-U", superuser, "--pwfile", pwfile.name, "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        os.unlink(pwfile.name)
    # Other containers of the stack connect over its network, always with a password.
    with (DATA / "pg_hba.conf").open("a") as hba:
        hba.write("host all all all scram-sha-256\n")
    options = f"-c listen_addresses='' -c unix_socket_directories={SOCKETS}"
    subprocess.run(["pg_ctl", "-D", str(DATA), "-o", options, "-w", "start"], check=True)
    environment = dict(os.environ, PGHOST=SOCKETS, PGUSER=superuser, POSTGRES_USER=superuser)
    environment.setdefault("POSTGRES_DB", "postgres")
    for script in sorted(INIT_SCRIPTS.glob("*")):
        say(f"running {script.name}")
        if script.suffix == ".sh":
            subprocess.run(["bash", str(script)], check=True, env=environment)
        elif script.suffix == ".sql":
            subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-f", str(script)], check=True,
                           env=environment)  # fmt: skip
    subprocess.run(["pg_ctl", "-D", str(DATA), "-m", "fast", "-w", "stop"], check=True)
    say("cluster created")


def main() -> None:
    arguments = sys.argv[1:] or ["postgres"]
    if arguments[0] != "postgres":
        os.execvp(arguments[0], arguments)
    superuser = os.environ.get("POSTGRES_USER", "postgres")
    if not (DATA / "PG_VERSION").exists():
        initialise(superuser)
    os.execvp(
        "postgres",
        ["postgres", "-D", str(DATA), "-c", "listen_addresses=*", "-c", f"unix_socket_directories={SOCKETS}",
         *arguments[1:]],
    )  # fmt: skip


if __name__ == "__main__":
    main()
