#!/usr/bin/env bash
# The whole ingest suite, as reported in bench/README.md. Figures land in bench/out/.
#   bash bench/run_all.sh                       the code in this work tree
#   CODE=/tmp/snap/src TAG=-snap bash bench/run_all.sh
#                                               another copy of the code (e.g. a `git archive`
#                                               of some commit, C extension built in place),
#                                               labels suffixed with TAG
# About 8 minutes on the 2-core machine, plus waits for the machine to be quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/work/venv/bin/python}
SECONDS_=${BENCH_SECONDS:-20}
TAG=${TAG:-}
SRV=()
if [ -n "${CODE:-}" ]; then
  SRV=(--server-env "PYTHONPATH=$CODE")
  export PYTHONPATH="$CODE"   # pipeline.py / storage.py import the same code
fi

# 1. traces, max throughput (closed loop, 8 senders)
$PY bench/ingest.py --signal traces --seconds "$SECONDS_" --senders 8 --batch 500 --label "traces-max$TAG" "${SRV[@]}"
MAX=$($PY -c "import json;print(int(json.load(open('bench/out/ingest-traces-max$TAG.json'))['accepted_items_per_s']))")
HALF=$((MAX / 2))
# 2. traces at half of that (open loop): the "p99 at half load" figure
$PY bench/ingest.py --signal traces --seconds "$SECONDS_" --senders 8 --batch 500 --rate "$HALF" --label "traces-half$TAG" "${SRV[@]}"
# 3. logs and metrics, max throughput
$PY bench/ingest.py --signal logs --seconds "$SECONDS_" --senders 8 --batch 500 --label "logs-max$TAG" "${SRV[@]}"
$PY bench/ingest.py --signal metrics --seconds "$SECONDS_" --senders 8 --batch 500 --label "metrics-max$TAG" "${SRV[@]}"
# 4. where the time goes: traces at max load under py-spy (CPU samples only), then summary
$PY bench/ingest.py --signal traces --seconds 15 --senders 8 --batch 500 --no-seal --py-spy --label "traces-profile$TAG" "${SRV[@]}"
$PY bench/profile_top.py "bench/out/profile-traces-profile$TAG.txt" --top 15 | tee "bench/out/profile-traces-profile$TAG.summary.txt"
# 5. in-process stage costs (no HTTP), CPU time per item
for s in traces logs metrics; do $PY bench/pipeline.py --signal "$s" --requests 160; done
# 6. bytes per item on disk for data that never repeats (no server)
for s in traces logs metrics; do $PY bench/storage.py --signal "$s"; done
# 7. /health and small senders while the largest allowed requests decode (PYTHONPATH: CODE)
$PY bench/responsiveness.py --seconds 30 --label "responsiveness$TAG"
