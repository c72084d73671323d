#!/usr/bin/env bash
# Start or stop a local standalone Flink cluster for `landsight pipeline run --engine flink --flink-master`:
# a JobManager and N TaskManagers, each its own process on 127.0.0.1 (free ports, small memory), with Flink's own
# scripts from the Flink environment (scripts/flink-env.sh). FOLDER holds the cluster's configuration, logs
# (FOLDER/log), temporary files and its process ids (FOLDER/cluster.json).
#
# Usage: scripts/flink-cluster.sh start FOLDER [--taskmanagers 2] [--slots 1]   # prints the master, 127.0.0.1:PORT
#        scripts/flink-cluster.sh stop FOLDER
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${LANDSIGHT_FLINK_PYTHON:-$ROOT/.venv-flink/bin/python}
if [ ! -x "$PYTHON" ]; then
  echo "flink-cluster: $PYTHON not found; create the Flink environment with scripts/flink-env.sh" >&2
  exit 2
fi
exec "$PYTHON" -m landsight.pipeline.flink_cluster "$@"
