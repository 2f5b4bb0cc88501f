#!/bin/sh
# What Apache Kafka's script of this name does for the admin commands: the jars, a small heap, quiet logs.
main=$1
shift
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
  "-Dlog4j2.configurationFile=${KAFKA_HOME:-/opt/kafka}/config/tools-log4j2.yaml" \
  -cp "${KAFKA_HOME:-/opt/kafka}/libs/*" "$main" "$@"
