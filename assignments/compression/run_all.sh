#!/usr/bin/env bash
# Reproduces assignments/compression/results/ (about 6 hours on two CPU cores, from the steps'
# times measured one at a time, never in one go: the trainings ~55 min side by side, one thread
# each; the report ~3.3 h; the seeds ~1 h; the rank sweep ~45 min). Needs the IMDB archive: $MINIDL_DATA or
# ~/.cache/minidl (`minidl data download` fetches it).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/compress}
RESULTS=assignments/compression/results
mkdir -p "$RUNS" "$RESULTS"

# 1. The teacher encoder and the causal decoder of the same size (AdamW, warm-up then linear
#    decay, weight decay, dropout, a checkpoint and a test-curve point every half epoch, early
#    stopping with patience 3, the best validation checkpoint kept).
common=(--model transformer --hidden 128 --embed-dim 128 --dropout 0.1 --data imdb --max-length 256
        --max-vocab 20000 --batch-size 32 --epochs 3 --optimizer adamw --lr 0.001 --weight-decay 0.01
        --warmup-steps 200 --eval-every 352 --patience 3 --test-curve --device torch --quiet)
encoder='{"num_layers":2,"num_heads":4,"d_ff":256,"max_len":256}'
decoder='{"num_layers":2,"num_heads":4,"d_ff":256,"max_len":256,"causal":true}'
OMP_NUM_THREADS=1 .venv/bin/minidl train "${common[@]}" --model-options "$encoder" --out "$RUNS/teacher" &
OMP_NUM_THREADS=1 .venv/bin/minidl train "${common[@]}" --model-options "$decoder" --out "$RUNS/decoder" &
wait
.venv/bin/minidl curves "$RUNS/teacher/results.json" "$RUNS/decoder/results.json" --out "$RESULTS/curves.png"

# 2. Every compression method on the teacher, one table (resumable: rerun to continue).
#    Gradual pruning gets 3 passes over all 22,500 training reviews (2 over 8,000 lost 4.6
#    points at 90 %); the other fine-tuning runs use 8,000 reviews.
.venv/bin/minidl compress-report --teacher "$RUNS/teacher/best.npz" --decoder "$RUNS/decoder/best.npz" \
    --out "$RUNS/report" --device torch --fine-tune 8000 --student-epochs 2 --gradual-epochs 3 --gradual-tune 22500

# 3. The fine-tuned rows within a point of the teacher (and their control, the teacher after the
#    same distilled pass), under seeds 1 and 2 as well: seed 0's rows are step 2's.
.venv/bin/minidl compress seeds --teacher "$RUNS/teacher/best.npz" --out "$RUNS/report" --device torch \
    --fine-tune-reviews 8000 --seeds 0,1,2

# 4. The SVD rank sweep of every factorisable Linear at once, before and after one distilled pass
#    (5,000 test reviews per point).
.venv/bin/minidl compress lowrank-sweep --teacher "$RUNS/teacher/best.npz" --out "$RUNS/sweep" --device torch \
    --fine-tune-reviews 8000 --test-limit 5000

cp "$RUNS/report/results.md" "$RUNS/report/results.jsonl" "$RUNS/report/seeds.md" \
   "$RUNS/report/"accuracy_vs_*.{png,svg} "$RESULTS/"
cp "$RUNS/sweep/rank_sweep.jsonl" "$RUNS/sweep/rank_sweep.png" "$RUNS/sweep/rank_sweep.svg" "$RESULTS/"
for run in teacher decoder; do cp "$RUNS/$run/results.json" "$RESULTS/$run.json"; done
