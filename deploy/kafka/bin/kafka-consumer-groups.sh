#!/bin/sh
# Apache Kafka's kafka-consumer-groups.sh, from the same jars as the broker.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@"
