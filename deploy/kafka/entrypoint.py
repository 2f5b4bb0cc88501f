#!/usr/bin/python3
"""Start one Apache Kafka broker (KRaft) configured from the environment, as the apache/kafka image does.

Every KAFKA_<NAME> variable becomes a line of server.properties: the prefix goes, the rest is lower-cased,
``___`` becomes ``-``, ``__`` becomes ``_`` and ``_`` becomes ``.`` (KAFKA_NODE_ID → node.id). The JVM's own
settings (KAFKA_HEAP_OPTS, KAFKA_OPTS, …) are not broker properties. On the first start the log directory
is formatted with CLUSTER_ID, the same for every broker of the cluster.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

HOME = Path(os.environ.get("KAFKA_HOME", "/opt/kafka"))
CONFIG = HOME / "config" / "server.properties"
CLASSPATH = str(HOME / "libs" / "*")
LOGGING = f"-Dlog4j2.configurationFile={HOME / 'config' / 'log4j2.yaml'}"
JVM_SETTINGS = {
    "KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_JMX_OPTS",
    "KAFKA_LOG4J_OPTS", "KAFKA_HOME", "KAFKA_VERSION",
}  # fmt: skip
DEFAULT_HEAP = "-Xms512m -Xmx1g"
PERFORMANCE = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExitOnOutOfMemoryError"


def property_name(variable: str) -> str:
    name = variable.removeprefix("KAFKA_").lower()
    return name.replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_")


def properties(environ: dict[str, str]) -> dict[str, str]:
    return {
        property_name(key): value
        for key, value in sorted(environ.items())
        if key.startswith("KAFKA_") and key not in JVM_SETTINGS
    }


def format_command(cluster_id: str, config: Path, classpath: str) -> list[str]:
    """StorageTool's format of the log directory; the id joined to its option, since an id may begin with "-"
    (1 in 64 of random ones), which the tool's parser would take for an option of its own and refuse."""
    return ["java", "-Xmx256m", LOGGING, "-cp", classpath, "kafka.tools.StorageTool", "format",
            f"--cluster-id={cluster_id}", "-c", str(config), "--ignore-formatted"]  # fmt: skip


def fail(message: str) -> None:
    print(f"juwei-kafka: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    config = properties(dict(os.environ))
    for required in ("process.roles", "node.id", "listeners", "controller.listener.names", "log.dirs"):
        if not config.get(required):
            fail(f"KAFKA_{required.upper().replace('.', '_')} is not set")
    cluster_id = os.environ.get("CLUSTER_ID", "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id):
        fail("CLUSTER_ID must be 22 characters of url-safe base64 (`juwei init` makes one)")
    CONFIG.write_text("".join(f"{key}={value}\n" for key, value in config.items()))
    log_dir = Path(config["log.dirs"].split(",")[0])
    if not (log_dir / "meta.properties").exists():
        # First start: write the cluster id and node id into the empty log directory.
        subprocess.run(format_command(cluster_id, CONFIG, CLASSPATH), check=True)
    heap = os.environ.get("KAFKA_HEAP_OPTS") or DEFAULT_HEAP
    performance = os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS") or PERFORMANCE
    extra = os.environ.get("KAFKA_OPTS", "")
    command = ["java", *heap.split(), *performance.split(), *extra.split(), "-Djava.awt.headless=true", LOGGING,
               "-cp", CLASSPATH, "kafka.Kafka", str(CONFIG)]  # fmt: skip
    os.execvp("java", command)


if __name__ == "__main__":
    main()
