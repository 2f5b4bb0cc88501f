#!/bin/sh
# Apache Kafka's kafka-storage.sh, from the same jars as the broker.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
