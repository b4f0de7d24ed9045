#!/bin/sh
# Create (or converge the config of) the slaproc topics listed in topics.yml.
# Idempotent: existing topics keep their partitions (a mismatch is reported and fails
# the job, because repartitioning keyed state needs a migration, not an alter).
#
# Environment:
#   BOOTSTRAP_SERVER       broker (default kafka:9092)
#   SLAPROC_TOPIC_PREFIX   prepended to every name (default empty)
#   SLAPROC_APP_ID         the worker's app id: "<app_id>" in topics.yml (default
#                          ${SLAPROC_TOPIC_PREFIX}slaproc, the worker's default; set both as the workers do)
#   KAFKA_COMMAND_CONFIG   a client properties file for a TLS/SASL cluster, passed to every tool as
#                          --command-config (security.protocol, sasl.mechanism, sasl.jaas.config,
#                          ssl.truststore.location, ...: docs/operations.md "Topics on a managed cluster")
#   TOPICS_FILE            default: topics.yml next to this script
#   REPLICATION_FACTOR     overrides the file's replication_factor
#   KAFKA_BIN              directory of kafka-topics.sh / kafka-configs.sh (default /opt/kafka/bin)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
topics_file=${TOPICS_FILE:-$here/topics.yml}
bootstrap=${BOOTSTRAP_SERVER:-kafka:9092}
prefix=${SLAPROC_TOPIC_PREFIX:-}
app_id=${SLAPROC_APP_ID:-${prefix}slaproc}
command_config=${KAFKA_COMMAND_CONFIG:-}
if [ -n "$command_config" ] && [ ! -r "$command_config" ]; then
  echo "KAFKA_COMMAND_CONFIG: $command_config is not a readable file" >&2; exit 2
fi
kafka_bin=${KAFKA_BIN:-/opt/kafka/bin}
tab=$(printf '\t')

file_replication=$(awk '/^replication_factor:/ { print $2 }' "$topics_file")
replication=${REPLICATION_FACTOR:-$file_replication}
[ -n "$replication" ] || { echo "no replication_factor in $topics_file" >&2; exit 2; }

# One line per topic: name <TAB> partitions <TAB> key=value,key=value
list_topics() {
  awk '
    function flush() {
      if (name != "") print name "\t" partitions "\t" config
      name = ""; partitions = ""; config = ""
    }
    /^[ \t]*#/ || /^[ \t]*$/ { next }
    { sub(/[ \t]+#.*$/, "") }
    /^  - name:/        { flush(); name = $3; next }
    /^    partitions:/  { partitions = $2; next }
    /^    config:/      { next }
    /^      [^ ]/       {
      key = $1; sub(/:$/, "", key); value = $2; gsub(/"/, "", value)
      config = config (config == "" ? "" : ",") key "=" value
      next
    }
    END { flush() }
  ' "$topics_file"
}

# kafka-topics.sh / kafka-configs.sh with the connection options (and --command-config if given)
kafka_tool() {
  tool=$1; shift
  if [ -n "$command_config" ]; then
    "$kafka_bin/$tool" --bootstrap-server "$bootstrap" --command-config "$command_config" "$@"
  else
    "$kafka_bin/$tool" --bootstrap-server "$bootstrap" "$@"
  fi
}

partition_count() {
  kafka_tool kafka-topics.sh --describe --topic "$1" |
    awk '{ for (i = 1; i < NF; i++) if ($i == "PartitionCount:") { print $(i + 1); exit } }'
}

status=0
list_topics > /tmp/slaproc-topics.$$
while IFS="$tab" read -r name partitions config; do
  case "$name" in
    "<app_id>"*) topic="$app_id${name#"<app_id>"}" ;;  # the worker's own topics: no second prefix
    *) topic="$prefix$name" ;;
  esac
  set -- --create --if-not-exists --topic "$topic" \
    --partitions "$partitions" --replication-factor "$replication"
  old_ifs=$IFS; IFS=,
  for setting in $config; do set -- "$@" --config "$setting"; done
  IFS=$old_ifs
  kafka_tool kafka-topics.sh "$@"
  if [ -n "$config" ]; then
    kafka_tool kafka-configs.sh --alter \
      --entity-type topics --entity-name "$topic" --add-config "$config"
  fi
  actual=$(partition_count "$topic")
  if [ "$actual" != "$partitions" ]; then
    echo "topic $topic has $actual partitions, topics.yml says $partitions (see docs/operations.md#scaling)" >&2
    status=1
  else
    echo "topic $topic: $partitions partitions, $config"
  fi
done < /tmp/slaproc-topics.$$
rm -f /tmp/slaproc-topics.$$
exit $status
