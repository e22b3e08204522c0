#!/usr/bin/env bash
# Reproduce the IMDB tables and figures of assignments/ex2_sentiment: tables 1-4, figure 1, the
# explanations and the baselines (ablations.sh adds the runs behind table 4's choices). Run from the
# repository root after `make install`, IMDB under $MINIDL_DATA or ~/.cache/minidl. Every sweep is
# resumable: run the script again after an interruption and only the missing runs train (and those
# whose vectors or teacher checkpoint have other bytes than their record names). Timed end
# to end from a clean clone with no results, no cached vectors and no checkpoints, on two cores:
# 106 min (2026-12-05; 122 min the same morning before step 5 ran in two lanes; the handout lists
# each step's share).
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH"
R=assignments/ex2_sentiment/results
VEC="${VEC:-$HOME/.cache/minidl/imdb_ppmi_100d.txt}"
mkdir -p "$R"

# word vectors from the 75,000 IMDB train + unlabelled reviews (PPMI + SVD, 100-d; ~40 s)
[ -f "$VEC" ] || minidl vectors build --out "$VEC"

# the course's settings: first 100 words, frozen 100-d vectors, Adam 1e-3, batch 32; dropout 0.3,
# up to 6 epochs with a validation check every 350 steps and early stopping (patience 4)
COMMON=(--data imdb --epochs 6 --max-length 100 --set "embeddings=\"$VEC\"" --set freeze_embeddings=true
        --set dropout=0.3 --set eval_every=350 --set patience=4)

# 1. the five models, 3 seeds (table 1); rnn/gru at H = 64 are also points of the sweep below
minidl sweep --models gru,rnn,attention --hidden 64 --seeds 0,1,2 "${COMMON[@]}" --results "$R/imdb_100.jsonl"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" --seeds 0,1,2 "${COMMON[@]}" --results "$R/imdb_100.jsonl"

# 2. accuracy, F1 and AUC against the hidden size for the RNN and the GRU (figure 1)
minidl sweep --models rnn,gru --hidden 16,32,64,128 --seeds 0,1,2 "${COMMON[@]}" --results "$R/imdb_100.jsonl"
minidl plot --results "$R/imdb_100.jsonl" --models rnn,gru --out "$R/imdb_hidden" \
    --title "IMDB, first 100 words: RNN and GRU against hidden size (mean ± std, 3 seeds)"

# 3. the course's MLP architecture table (table 2)
minidl sweep --models mlp --hidden "[50];[64,32];[64,32,16];[200,50];[32,16];[8,16,32]" --seeds 0,1,2 \
    "${COMMON[@]}" --results "$R/imdb_mlp_architectures.jsonl"
minidl plot --results "$R/imdb_mlp_architectures.jsonl" --out "$R/imdb_mlp_architectures" \
    --title "IMDB, first 100 words: TokenMLP architectures (3 seeds)"

# 4. longer reviews: the first 400 words (one seed)
LONG=(--seeds 0 --data imdb --epochs 4 --max-length 400 --set "embeddings=\"$VEC\"" --set freeze_embeddings=true
      --set dropout=0.3 --set eval_every=350 --set patience=3)
minidl sweep --models gru,attention --hidden 64 "${LONG[@]}" --results "$R/imdb_400.jsonl"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" "${LONG[@]}" --results "$R/imdb_400.jsonl"

# 5. the best recipe found for each model (table 4; ablations.sh has the runs behind each choice):
#    skip-gram vectors trained by minidl (SGNS, word2vec, on the same 75,000 reviews; ~5 min), at
#    100 words fine-tuned at their own learning rate 1e-4 (the rest learns at 1e-3) by the RNN and the
#    GRU, frozen for the per-word models (3 seeds). WindowAttention's best at 100 words is
#    step 1's (frozen PPMI vectors): fine-tuned skip-gram vectors did not help it (ablations.sh step 2)
SGNS="${SGNS:-$HOME/.cache/minidl/imdb_sgns_100d.txt}"
[ -f "$SGNS" ] || minidl vectors build --method sgns --out "$SGNS"
FINE=(--data imdb --epochs 6 --max-length 100 --set "embeddings=\"$VEC\"" --set freeze_embeddings=false
      --set embedding_lr=0.0001 --set dropout=0.3 --set eval_every=350 --set patience=4)
LONG_FINE=(--data imdb --epochs 8 --max-length 400 --set "embeddings=\"$VEC\"" --set freeze_embeddings=false
           --set embedding_lr=0.0001 --set warmup_steps=200 --set dropout=0.3 --set eval_every=350 --set patience=4)
#    Up to the teacher below, two lanes side by side (lane 1 in the background), each sweep with half the
#    CPUs as workers of one thread each. A run's digits depend on its thread count, and one thread a job
#    is what a two-worker sweep gives each job on two cores, so the records are the same; but a sweep of
#    3 jobs on 2 workers left a core idle through its third job, where the other lane's jobs now run.
CPUS=$(python -c "from minidl.bench.threads import usable_cpus; print(usable_cpus())")
HALF=(--workers "$(( CPUS > 1 ? CPUS / 2 : 1 ))" --threads 1)
(
#    lane 1: the RNN and the GRU with the skip-gram vectors fine-tuned (~5 min on one core)
minidl sweep --models rnn,gru --hidden 64 --seeds 0,1,2 "${FINE[@]}" --set "embeddings=\"$SGNS\"" \
    "${HALF[@]}" --results "$R/imdb_100_sgns.jsonl"
#    the GRU's vectors after a frozen warm-up: the table held for the first epoch (700 steps) while the
#    GRU learns around the vectors as given, then fine-tuned at 1e-4 (table 4's GRU; ~6 min)
minidl sweep --models gru --hidden 64 --seeds 0,1,2 "${FINE[@]}" --set "embeddings=\"$SGNS\"" \
    --set embedding_freeze_steps=700 "${HALF[@]}" --results "$R/imdb_100_sgns.jsonl"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" --seeds 0,1,2 "${COMMON[@]}" --set "embeddings=\"$SGNS\"" \
    "${HALF[@]}" --results "$R/imdb_100_sgns.jsonl"
#    and at 400 words, where 4 epochs were still improving: 8 epochs, the learning rate warmed up over
#    200 steps then decayed linearly to 0, H = 128, the vectors fine-tuned at 1e-4; the GRU with the
#    skip-gram vectors and dropout 0.5 (3 seeds; ~25 min on one core)
minidl sweep --models gru --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set "embeddings=\"$SGNS\"" --set dropout=0.5 \
    "${HALF[@]}" --results "$R/imdb_400_recipes.jsonl"
) &
LANE1=$!
trap 'pkill -P "$LANE1" 2>/dev/null; kill "$LANE1" 2>/dev/null' EXIT
#    lane 2: WindowAttention with the PPMI vectors and word dropout 0.1 (each training word shown as <unk>
#    with probability 0.1), learning from a teacher as well as from the labels: the NB-SVM baseline of
#    step 7, trained on the training reviews not held out for validation, gives soft targets for every
#    training review and for IMDB's 50,000 unlabelled reviews, which join training with its choice as
#    their label (distillation, alpha 0.5, T 2); 4 epochs over the 72,500 reviews, all of them (patience
#    4 checks is 0.6 of an epoch here: no early stop, the best check kept) (3 seeds; ~42 min on one core)
minidl sweep --models attention --hidden 128 --seeds 0,1,2 --data imdb --epochs 4 "${LONG_FINE[@]:4}" \
    --set word_dropout=0.1 --set 'teacher="nbsvm"' --set unlabelled=50000 --set patience=null \
    "${HALF[@]}" --results "$R/imdb_400_distilled.jsonl"
wait "$LANE1"
trap - EXIT
#    and at 100 words all five learn from a teacher too: table 5's GRU at 400 words (H = 128, dropout 0.5,
#    PPMI vectors, seed 0; ~7 min), which reads the first 400 words of each review where its students read
#    100, trained here with a checkpoint; its soft targets on the training and the 50,000 unlabelled
#    reviews, 3 epochs over the 72,500 reviews, all of them, the best check kept (no early stop: with patience
#    4 some runs stopped a third of the way in, ablations.sh step 9), each model's recipe above otherwise
#    (3 seeds; ~11 min), but the per-word models fine-tune their skip-gram vectors at 1e-4 as the RNN does
#    (3 seeds; ~6 min), and WindowAttention, with 72,500 reviews to learn from, takes table 4's 400-word recipe
#    (H = 128, vectors fine-tuned at 1e-4, word dropout 0.1, warm-up 200 steps then decay) with the skip-gram
#    vectors as the other 100-word recipes (3 seeds; ~10 min). The first run on each seed's reviews keeps
#    the teacher's logits beside its checkpoint; the others read them (minidl/train/teacher.py)
TEACHER=runs/ex2/gru_teacher/best.npz
[ -f "$TEACHER" ] || minidl train --model gru --hidden 128 --data imdb --max-length 400 --embeddings "$VEC" \
    --no-freeze-embeddings --embedding-lr 0.0001 --warmup-steps 200 --dropout 0.5 --eval-every 350 --patience 4 \
    --epochs 8 --out runs/ex2/gru_teacher --quiet
TAUGHT=(--epochs 3 --set unlabelled=50000 --set "teacher=\"$TEACHER\"" --set patience=null)
minidl sweep --models gru --hidden 64 --seeds 0,1,2 "${FINE[@]}" --set "embeddings=\"$SGNS\"" --set embedding_freeze_steps=700 \
    "${TAUGHT[@]}" --results "$R/imdb_100_distilled.jsonl"
minidl sweep --models rnn --hidden 64 --seeds 0,1,2 "${FINE[@]}" --set "embeddings=\"$SGNS\"" "${TAUGHT[@]}" \
    --results "$R/imdb_100_distilled.jsonl"
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${FINE[@]}" --set warmup_steps=200 --set word_dropout=0.1 \
    "${TAUGHT[@]}" --set "embeddings=\"$SGNS\"" --results "$R/imdb_100_distilled.jsonl"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" --seeds 0,1,2 "${FINE[@]}" --set "embeddings=\"$SGNS\"" \
    "${TAUGHT[@]}" --results "$R/imdb_100_distilled.jsonl"

# 6. the course's three reviews, explained by each model (seed 0 checkpoints)
for m in rnn gru mlp softmax attention; do
    h=64; case $m in mlp|softmax) h="[64,32,16]";; esac
    [ -f "runs/ex2/$m/best.npz" ] || minidl train --model "$m" --hidden "$h" --data imdb --epochs 6 --max-length 100 \
        --embeddings "$VEC" --freeze-embeddings --dropout 0.3 --eval-every 350 --patience 4 --out "runs/ex2/$m" --quiet
done
for m in rnn gru mlp softmax attention; do
    echo "== $m =="
    minidl explain "Not what I expected" "This movie is the best movie I have ever seen" \
        "I really can not understand why people said this is a good movie" --checkpoint "runs/ex2/$m/best.npz"
done | tee "$R/explanations.txt"

# 7. the linear baselines on the same inputs (TF-IDF and NB-SVM logistic regression; ~2 min): word
#    1-2-grams, and single words, the class of the per-word models (see the handout's discussion)
minidl baseline --max-length 100,400 | tee "$R/baselines.txt"
minidl baseline --ngrams 1,1 --max-length 100,400 | tee "$R/baselines_unigram.txt"
