#!/bin/sh
# Apache Kafka's kafka-metadata-quorum.sh, from the same jars as the broker.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.MetadataQuorumCommand "$@"
