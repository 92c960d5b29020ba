#!/usr/bin/env bash
# Trains the five variants side by side on one GPU, builds the Hugging Face fixtures meanwhile,
# cross-checks everything, and leaves a results folder:
#
#   bash tooling/train/run_all.sh WORK_DIR [STEPS] [extra train.py args...]
#
# WORK_DIR/checkpoints/fortunes-<variant>/   config.json, model.safetensors, expected_logits.*, training_log.json
# WORK_DIR/fixtures/hf/<name>/               transformers fixtures (hf_fixtures.py)
# WORK_DIR/logs/                             one log per job, pytest, hf_report.json, env.txt
#
# Needs the corpus in tooling/train/data (python3 -m attnkit_train.data --out tooling/train/data).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mkdir -p "$1" && cd "$1" && pwd)"
STEPS="${2:-1500}"
shift 2 || shift $#
EXTRA=("$@")
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
PY="${PYTHON:-python3}"  # locally: PYTHON=/usr/bin/python3 (Debian's torch)
mkdir -p "$WORK/checkpoints" "$WORK/fixtures/hf" "$WORK/logs"
cd "$HERE"

{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
  "$PY" -c "import transformers; print('transformers', transformers.__version__)" 2>/dev/null || echo "no transformers"
} > "$WORK/logs/env.txt" 2>&1
cat "$WORK/logs/env.txt"

start=$(date +%s)
pids=()
for variant in mha gqa mla dsa nsa; do
  "$PY" -m attnkit_train.train --variant "$variant" --data data --out "$WORK/checkpoints/fortunes-$variant" \
    --steps "$STEPS" "${EXTRA[@]}" > "$WORK/logs/train-$variant.log" 2>&1 &
  pids+=($!)
done
# CPU-only work while the GPU trains: golden tests (torch 2 takes the SDPA paths too) and fixtures
"$PY" -m pytest -q tests > "$WORK/logs/pytest.log" 2>&1
tail -n 3 "$WORK/logs/pytest.log"
"$PY" hf_fixtures.py --out "$WORK/fixtures/hf" > "$WORK/logs/hf-fixtures.log" 2>&1
grep -v '^  ' "$WORK/logs/hf-fixtures.log" | cut -c1-400
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then status=1; echo "training job $i failed"; fi
done
echo "training wall time: $(( $(date +%s) - start )) s" | tee "$WORK/logs/wall.txt"
for variant in mha gqa mla dsa nsa; do tail -n 1 "$WORK/logs/train-$variant.log"; done
# our llama / deepseek checkpoints through transformers' own classes
"$PY" hf_fixtures.py --no-fixtures --out "$WORK/fixtures/hf" --check-checkpoints "$WORK/checkpoints" --report "$WORK/logs/hf_report.json" \
  > "$WORK/logs/hf-check.log" 2>&1
grep '"folder"' "$WORK/logs/hf-check.log" | cut -c1-300
exit $status
