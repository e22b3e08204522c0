#!/usr/bin/env bash
# Reproduces assignments/mlm_distillation/results/ (about 4 hours on one CPU core, the steps
# one after the other; the time limits make the step counts depend on the machine). Needs the
# IMDB archive: $MINIDL_DATA or ~/.cache/minidl (`minidl data download` fetches it).
# Run again, it replaces its earlier runs (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/mlm}
RESULTS=assignments/mlm_distillation/results
mkdir -p "$RUNS" "$RESULTS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# 1. The teacher: 4 layers, d=192, 4 heads, FFN 768, segments of 128 tokens from the 75,000
#    training + unlabelled reviews, vocabulary 8,000, embedding table started from PPMI-SVD
#    vectors of the same reviews. 1,500 steps of 32 segments at lr 1e-3 (it sat on the
#    word-frequency plateau), then a warm restart at lr 2e-3 for up to 45 minutes.
.venv/bin/minidl mlm pretrain --out "$RUNS/teacher_1500.npz" --d-model 192 --layers 4 --heads 4 --d-ff 768 \
    --length 128 --max-vocab 8000 --steps 1500 --time-limit 3000 --batch-size 32 --lr 1e-3 --eval-every 100 \
    --overwrite | tee "$RUNS/teacher.log"
.venv/bin/minidl mlm pretrain --resume-from "$RUNS/teacher_1500.npz" --out "$RUNS/teacher.npz" --steps 3000 \
    --time-limit 2700 --batch-size 32 --lr 2e-3 --eval-every 250 --seed 1 --overwrite | tee -a "$RUNS/teacher.log"

# 2. The student: 4 layers, d=48, 2 heads, FFN 192. It starts from the teacher's embedding
#    table, positions and output bias projected onto the top 48 singular directions of the
#    teacher's table (--init teacher), and learns from the teacher's soft targets at the masked
#    positions (α = 0, T = 2) plus its head features in that basis (--head-weight 1).
.venv/bin/minidl mlm distill --teacher "$RUNS/teacher.npz" --out "$RUNS/student.npz" --d-model 48 --layers 4 \
    --heads 2 --d-ff 192 --steps 4000 --time-limit 3600 --batch-size 32 --lr 2e-3 --eval-every 250 \
    --init teacher --head-weight 1 --overwrite | tee "$RUNS/student.log"

# 2b. Toward the thesis's 22x smaller and 11x faster: the same recipe with 2 layers instead of 4,
#     then stored in int8 (every Linear per output channel, the tied embedding table per row).
.venv/bin/minidl mlm distill --teacher "$RUNS/teacher.npz" --out "$RUNS/student_2layer.npz" --d-model 48 --layers 2 \
    --heads 2 --d-ff 192 --steps 4000 --time-limit 3600 --batch-size 32 --lr 2e-3 --eval-every 250 \
    --init teacher --head-weight 1 --overwrite | tee "$RUNS/student_2layer.log"
.venv/bin/minidl mlm quantize --model "$RUNS/student_2layer.npz" --out "$RUNS/student_2layer_int8.npz"
for student in student_2layer student_2layer_int8; do
    .venv/bin/minidl mlm evaluate --teacher "$RUNS/teacher.npz" --student "$RUNS/$student.npz" \
        --out "$RESULTS/evaluation_$student.json"
done

# 3. The thesis's evaluation on 1,000 held-out sentences, and fill-mask examples.
.venv/bin/minidl mlm evaluate --teacher "$RUNS/teacher.npz" --student "$RUNS/student.npz" \
    --out "$RESULTS/evaluation.json"
for text in "happy birthday to [MASK] !" "this movie was [MASK] , i loved it ." \
            "the worst film i have ever [MASK] ." "the [MASK] was great but the plot was weak ."; do
    .venv/bin/minidl fill-mask "$text" --teacher "$RUNS/teacher.npz" --student "$RUNS/student.npz"
    echo
done | tee "$RESULTS/fill_mask.txt"

# 4. Fine-tuning on IMDB sentiment: the distilled student, the same network from the teacher's
#    projected embeddings alone (where the student started), and from scratch. (Two commands:
#    the baselines need only the student's settings and vocabulary, so they can run beside
#    step 2; one command with no --starts runs every start into one file.)
.venv/bin/minidl mlm finetune --student "$RUNS/student.npz" --teacher "$RUNS/teacher.npz" --epochs 3 \
    --out "$RESULTS/finetune_baselines.json" --starts "scratch,teacher embeddings only"
.venv/bin/minidl mlm finetune --student "$RUNS/student.npz" --out "$RESULTS/finetune_pretrained.json" --epochs 3 \
    --starts pretrained
cp "$RUNS/teacher.log" "$RUNS/student.log" "$RUNS/student_2layer.log" "$RESULTS/"

# 5. (ABLATIONS=1) What the student's recipe needs: the same student with the soft targets
#    only (no head matching), and started from co-occurrence vectors instead of the teacher's.
if [ "${ABLATIONS:-0}" = 1 ]; then
    for ablation in "soft_targets_only --init teacher" "cooccurrence_start --init cooccurrence"; do
        set -- $ablation
        name=$1; shift
        .venv/bin/minidl mlm distill --teacher "$RUNS/teacher.npz" --out "$RUNS/ablation_$name.npz" --d-model 48 \
            --layers 4 --heads 2 --d-ff 192 --steps 4000 --time-limit 3600 --batch-size 32 --lr 2e-3 \
            --eval-every 250 --overwrite "$@" | tee "$RESULTS/ablation_$name.log"
        .venv/bin/minidl mlm evaluate --teacher "$RUNS/teacher.npz" --student "$RUNS/ablation_$name.npz" \
            --out "$RESULTS/ablation_$name.json"
    done
fi
