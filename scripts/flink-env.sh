#!/usr/bin/env bash
# Create the separate environment for `landsight pipeline run --engine flink` (and its test).
#
# apache-flink pins an older apache-beam (2.61), pandas and pyarrow than the main environment uses, so it lives in
# its own virtualenv (default .venv-flink at the repository root, override with LANDSIGHT_FLINK_VENV). It holds
# apache-flink (which ships Flink's jars and runs a local mini-cluster on the machine's Java 11/17), the same torch as
# the main environment (identical masks need identical kernels) and landsight itself, editable.
#
# Usage: scripts/flink-env.sh            # idempotent: an existing, working environment is kept
#        PYTHON=python3.11 TORCH="torch==2.14.1 torchvision==0.29.1" scripts/flink-env.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LANDSIGHT_FLINK_VENV:-.venv-flink}
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-"torch==2.14.1 torchvision==0.29.1"}
FLINK=${FLINK:-"apache-flink==2.3.0"}

if ! command -v java >/dev/null 2>&1; then
  echo "flink-env: java not found; PyFlink needs a Java 11 or 17 runtime (apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import pyflink, torch, landsight.pipeline.stages" 2>/dev/null; then
  echo "flink-env: $VENV is ready"
  exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# shellcheck disable=SC2086  # TORCH and FLINK are lists of requirement specifiers
"$VENV/bin/pip" install -q $FLINK $TORCH -e '.[ml]'
"$VENV/bin/python" -c "import pyflink, torch, landsight.pipeline.stages; print('flink-env: ready,', torch.__version__)"
