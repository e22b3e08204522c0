#!/usr/bin/env bash
# The runs behind the choices of run_all.sh's recipes (table 4 and the handout's discussion): each
# change tried on top of a recipe, 3 seeds unless said, on all 25,000 test reviews. Run from the
# repository root after run_all.sh (it reuses its vectors); resumable like it. About 10 h on
# two cores (the runs' recorded times, two jobs at a time; step 5's two runs one after the other).
set -euo pipefail
export PATH="$PWD/.venv/bin:$PATH"
R=assignments/ex2_sentiment/results
VEC="${VEC:-$HOME/.cache/minidl/imdb_ppmi_100d.txt}"
SGNS="${SGNS:-$HOME/.cache/minidl/imdb_sgns_100d.txt}"
[ -f "$VEC" ] || minidl vectors build --out "$VEC"
[ -f "$SGNS" ] || minidl vectors build --method sgns --out "$SGNS"

# 1. first 100 words, the PPMI vectors fine-tuned at lr 1e-4 (table 4, against table 1's frozen ones)
FINE=(--data imdb --epochs 6 --max-length 100 --set "embeddings=\"$VEC\"" --set freeze_embeddings=false
      --set embedding_lr=0.0001 --set dropout=0.3 --set eval_every=350 --set patience=4)
minidl sweep --models rnn,gru,attention --hidden 64 --seeds 0,1,2 "${FINE[@]}" --results "$R/imdb_100_recipes.jsonl"
minidl plot --results "$R/imdb_100_recipes.jsonl" --out "$R/imdb_100_recipes" \
    --title "IMDB, first 100 words: vectors fine-tuned at lr 1e-4 (mean ± std, 3 seeds)"

# 2. first 100 words with the SGNS vectors fine-tuned (run_all.sh step 5's recipe for the RNN and the
#    GRU): WindowAttention with them (3 seeds; it stays with table 1's frozen PPMI vectors), then one
#    change each: the GRU with dropout 0.5, with word dropout 0.1, at H = 128 (seed 0); the RNN at
#    H = 128 and WindowAttention with word dropout 0.1 (3 seeds)
SFINE=("${FINE[@]}" --set "embeddings=\"$SGNS\"")
minidl sweep --models attention --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --results "$R/imdb_100_sgns.jsonl"
V="$R/imdb_100_sgns_variants.jsonl"
minidl sweep --models gru --hidden 64 --seeds 0 "${SFINE[@]}" --set dropout=0.5 --results "$V"
minidl sweep --models gru --hidden 64 --seeds 0 "${SFINE[@]}" --set word_dropout=0.1 --results "$V"
minidl sweep --models gru,rnn --hidden 128 --seeds 0 "${SFINE[@]}" --results "$V"
minidl sweep --models rnn --hidden 128 --seeds 1,2 "${SFINE[@]}" --results "$V"
minidl sweep --models attention --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --set word_dropout=0.1 --results "$V"
#    and weight decay: AdamW (decoupled decay) at 0.1 for the RNN and the GRU (3 seeds)
minidl sweep --models rnn,gru --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --set 'optimizer="adamw"' --set weight_decay=0.1 \
    --results "$V"
#    and the vectors fine-tuned after a frozen warm-up (the table held for the first 700 steps, about
#    one epoch; run_all.sh step 5 keeps it for the GRU) for the RNN and WindowAttention, and a longer
#    one, 1,400 steps, for the GRU (3 seeds)
minidl sweep --models rnn,attention --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --set embedding_freeze_steps=700 --results "$V"
minidl sweep --models gru --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --set embedding_freeze_steps=1400 --results "$V"
#    and, for the GRU with it, 10 epochs instead of 6 or the vectors then learning at 3e-4; for the RNN
#    (without it), 10 epochs: its runs had gone on to the last epoch (3 seeds)
SFINE10=(--data imdb --epochs 10 "${SFINE[@]:4}")
minidl sweep --models gru --hidden 64 --seeds 0,1,2 "${SFINE10[@]}" --set embedding_freeze_steps=700 --results "$V"
minidl sweep --models gru --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --set embedding_freeze_steps=700 \
    --set embedding_lr=0.0003 --results "$V"
minidl sweep --models rnn --hidden 64 --seeds 0,1,2 "${SFINE10[@]}" --results "$V"
#    and the GRU with the frozen warm-up at H = 128, or with dropout 0.5 (3 seeds)
minidl sweep --models gru --hidden 128 --seeds 0,1,2 "${SFINE[@]}" --set embedding_freeze_steps=700 --results "$V"
minidl sweep --models gru --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --set embedding_freeze_steps=700 --set dropout=0.5 \
    --results "$V"
#    and the recipe's GRU run (seed 0) scoring the test set at every check too (never used to choose):
#    does early stopping on the validation split, which shares movies with training, pick badly?
minidl sweep --models gru --hidden 64 --seeds 0 "${SFINE[@]}" --set test_curve=true --results "$V"

# 3. first 400 words, the PPMI vectors fine-tuned, 8 epochs, warm-up and decay: H = 64 and 128, and
#    dropout 0.5 for WindowAttention at H = 64 (seed 0 gained 1.1 points; 3 seeds lost them)
LONG_FINE=(--data imdb --epochs 8 --max-length 400 --set "embeddings=\"$VEC\"" --set freeze_embeddings=false
           --set embedding_lr=0.0001 --set warmup_steps=200 --set dropout=0.3 --set eval_every=350 --set patience=4)
minidl sweep --models gru,attention --hidden 64,128 --seeds 0,1,2 "${LONG_FINE[@]}" --results "$R/imdb_400_recipes.jsonl"
minidl sweep --models attention --hidden 64 --seeds 0,1,2 "${LONG_FINE[@]}" --set dropout=0.5 \
    --results "$R/imdb_400_recipes.jsonl"
#    dropout 0.5 for the GRU at H = 128 (table 4 keeps it, with the skip-gram vectors)
minidl sweep --models gru --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set dropout=0.5 \
    --results "$R/imdb_400_recipes.jsonl"
#    and WindowAttention at H = 128 with word dropout 0.1, table 4's recipe before the teacher (each
#    training word shown as <unk> with probability 0.1): these three were trained by `minidl train`
#    with the same settings, and their results.json written into the file as the sweep writes records
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 \
    --results "$R/imdb_400_recipes.jsonl"
minidl plot --results "$R/imdb_400_recipes.jsonl" --out "$R/imdb_400_recipes" \
    --title "IMDB, first 400 words: vectors fine-tuned at lr 1e-4, 8 epochs, warm-up and decay (mean ± std, 3 seeds)"

# 4. first 400 words with the SGNS vectors (run_all.sh runs the GRU of table 4 with them):
#    WindowAttention at H = 128 with word dropout 0.1 (seeds 0 and 1)
SLONG=("${LONG_FINE[@]}" --set "embeddings=\"$SGNS\"")
minidl sweep --models attention --hidden 128 --seeds 0,1 "${SLONG[@]}" --set word_dropout=0.1 \
    --results "$R/imdb_400_sgns.jsonl"
#    and table 4's GRU (H = 128, dropout 0.5) with the vectors fine-tuned after a frozen warm-up of 700
#    steps, as at 100 words (3 seeds)
minidl sweep --models gru --hidden 128 --seeds 0,1,2 "${SLONG[@]}" --set dropout=0.5 --set embedding_freeze_steps=700 \
    --results "$R/imdb_400_sgns.jsonl"

# 5. first 400 words, table 4's WindowAttention recipe (PPMI, H = 128, word dropout 0.1) with one
#    change to the model's shape: a wider per-word scorer (64 then 32 units instead of 32 then 16; 3 seeds),
#    a window of radius 10 instead of 5 (seed 0; the recipe scored 0.8898 on seed 0), and a larger
#    state, H = 256 (3 seeds: H = 64 to 128 had gained 0.7 points); and, to the training, weight decay:
#    AdamW (decoupled decay) at 0.1 (3 seeds), clipping the gradient norm at 1 instead of 5 (seeds 0
#    and 1), and batches drawn without length buckets, each mixing short and long reviews (3 seeds); and
#    the recipe scoring the test set at every check too (never used to choose; seed 0, later seeds 1
#    and 2): would a better choice of checkpoint reach 0.90?
W="$R/imdb_400_wa_variants.jsonl"
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 \
    --set 'model_options={"scorer_hidden": [64, 32]}' --results "$W"
minidl sweep --models attention --hidden 128 --seeds 0 "${LONG_FINE[@]}" --set word_dropout=0.1 \
    --set 'model_options={"radius": 10}' --results "$W"
minidl sweep --models attention --hidden 256 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 --results "$W"
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 --set 'optimizer="adamw"' \
    --set weight_decay=0.1 --results "$W"
minidl sweep --models attention --hidden 128 --seeds 0,1 "${LONG_FINE[@]}" --set word_dropout=0.1 --set clip_norm=1.0 \
    --results "$W"
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 --set bucket=false \
    --results "$W"
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 --set test_curve=true \
    --results "$W"
#    and the vectors fine-tuned after a frozen warm-up, the table held for the first 700 steps (3 seeds)
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 \
    --set embedding_freeze_steps=700 --results "$W"
#    and the two steadier changes together, the wider scorer and the frozen warm-up (3 seeds)
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 \
    --set embedding_freeze_steps=700 --set 'model_options={"scorer_hidden": [64, 32]}' --results "$W"
#    and a narrower window, radius 2 instead of 5 (each word sees two on either side; 3 seeds)
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.1 \
    --set 'model_options={"radius": 2}' --results "$W"
#    and word dropout 0.2 instead of 0.1 (the one change that had helped, from 0.0 to 0.1; 3 seeds)
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE[@]}" --set word_dropout=0.2 --results "$W"
#    and the vectors fine-tuned at 3e-4 instead of 1e-4 (seed 0)
minidl sweep --models attention --hidden 128 --seeds 0 "${LONG_FINE[@]}" --set word_dropout=0.1 --set embedding_lr=0.0003 \
    --results "$W"
#    and the checkpoint chosen by the validation loss instead of the accuracy, and the three shape and
#    warm-up changes of 0.896 each together (radius 2, the wider scorer, the frozen warm-up) (seed 0)
minidl sweep --models attention --hidden 128 --seeds 0 "${LONG_FINE[@]}" --set word_dropout=0.1 --set 'metric="loss"' \
    --results "$W"
minidl sweep --models attention --hidden 128 --seeds 0 "${LONG_FINE[@]}" --set word_dropout=0.1 \
    --set embedding_freeze_steps=700 --set 'model_options={"radius": 2, "scorer_hidden": [64, 32]}' --results "$W"
#    and the negative contractions written out, "didn't" -> "did not", so that one word "not" stands for
#    every negator the cleaning cut ("didn", "isn", "don"; seeds 0 and 1)
minidl sweep --models attention --hidden 128 --seeds 0,1 "${LONG_FINE[@]}" --set word_dropout=0.1 --set 'contractions="not"' \
    --results "$W"
#    and half the learning rates (5e-4, the vectors 5e-5) for 12 epochs with patience 6: smaller steps
#    against the swings of the summed logit (seeds 0 and 1)
LONG_FINE12=(--data imdb --epochs 12 "${LONG_FINE[@]:4}")
minidl sweep --models attention --hidden 128 --seeds 0,1 "${LONG_FINE12[@]}" --set word_dropout=0.1 --set lr=0.0005 \
    --set embedding_lr=0.00005 --set patience=6 --results "$W"
#    and 300-d PPMI vectors instead of 100-d (seeds 0 and 1)
VEC300="${VEC300:-$HOME/.cache/minidl/imdb_ppmi_300d.txt}"
[ -f "$VEC300" ] || minidl vectors build --dim 300 --out "$VEC300"
minidl sweep --models attention --hidden 128 --seeds 0,1 "${LONG_FINE[@]}" --set word_dropout=0.1 \
    --set "embeddings=\"$VEC300\"" --results "$W"

# 6. first 400 words, WindowAttention learning from a teacher as well as from the labels (table 4's row is
#    run_all.sh step 5's: the NB-SVM teacher, `--teacher nbsvm --unlabelled 50000`, 3 seeds). Here the other
#    teachers, on table 4's recipe with IMDB's 50,000 unlabelled reviews added, labelled by the teacher, and
#    4 epochs over the 72,500 reviews: table 5's GRU (H = 128, dropout 0.5, PPMI vectors, seed 0: 0.9004,
#    its record in imdb_400_recipes.jsonl), trained once more by run_all.sh with a checkpoint (3 seeds); the same
#    with no early stop (`patience=null`: all 4 epochs, the best check kept; seed 2, which had stopped at
#    step 3,150), and table 4's teacher, NB-SVM, stopping early as the recipe does
TEACHER=runs/ex2/gru_teacher/best.npz     # trained by run_all.sh step 5
LONG_FINE4=(--data imdb --epochs 4 "${LONG_FINE[@]:4}" --set word_dropout=0.1 --set unlabelled=50000)
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE4[@]}" --set "teacher=\"$TEACHER\"" --results "$W"
minidl sweep --models attention --hidden 128 --seeds 2 "${LONG_FINE4[@]}" --set "teacher=\"$TEACHER\"" --set patience=null \
    --results "$W"
#    and table 4's NB-SVM teacher with the early stop of the recipe (patience 4; 3 seeds)
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${LONG_FINE4[@]}" --set 'teacher="nbsvm"' --results "$W"

# 7. first 100 words with a teacher and the 50,000 unlabelled reviews, 3 epochs over the 72,500 reviews
#    (table 4 has the GRU teacher's runs, run_all.sh step 5): the NB-SVM baseline at 100 words as the
#    teacher for WindowAttention (table 1's settings), the GRU (table 4's recipe) and the RNN (table 4's;
#    3 seeds each), TokenMLP and SoftmaxWeighted (table 4's, frozen skip-gram vectors; seed 0)
COMMON=(--data imdb --epochs 6 --max-length 100 --set "embeddings=\"$VEC\"" --set freeze_embeddings=true
        --set dropout=0.3 --set eval_every=350 --set patience=4)
TAUGHT=(--epochs 3 --set unlabelled=50000 --set 'teacher="nbsvm"')
D="$R/imdb_100_distilled.jsonl"
minidl sweep --models attention --hidden 64 --seeds 0,1,2 "${COMMON[@]}" "${TAUGHT[@]}" --results "$D"
minidl sweep --models gru --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --set embedding_freeze_steps=700 "${TAUGHT[@]}" \
    --results "$D"
minidl sweep --models rnn --hidden 64 --seeds 0,1,2 "${SFINE[@]}" "${TAUGHT[@]}" --results "$D"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" --seeds 0 "${COMMON[@]}" --set "embeddings=\"$SGNS\"" \
    "${TAUGHT[@]}" --results "$D"

# 8. first 100 words, WindowAttention with table 4's GRU teacher and the 50,000 unlabelled reviews, 3 epochs
#    over the 72,500 reviews (table 4's row is run_all.sh step 5's: the 400-word recipe at H = 128 with the
#    skip-gram vectors, no early stop): table 1's recipe (frozen PPMI vectors) at H = 64 (table 4's row until
#    2026-12-04) and at H = 128; the 400-word recipe (PPMI fine-tuned at 1e-4, word dropout 0.1, warm-up 200 steps
#    then decay) stopping early (patience 4) at H = 128, and to the end at H = 64 and at H = 128 (table 4's row until
#    2026-12-05) (3 seeds each); and table 4's recipe over 5 epochs instead of 3 (3 seeds)
TAUGHT_GRU=(--epochs 3 --set unlabelled=50000 --set "teacher=\"$TEACHER\"")
minidl sweep --models attention --hidden 64,128 --seeds 0,1,2 "${COMMON[@]}" "${TAUGHT_GRU[@]}" --results "$D"
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${FINE[@]}" --set warmup_steps=200 --set word_dropout=0.1 \
    "${TAUGHT_GRU[@]}" --results "$D"
minidl sweep --models attention --hidden 64,128 --seeds 0,1,2 "${FINE[@]}" --set warmup_steps=200 --set word_dropout=0.1 \
    "${TAUGHT_GRU[@]}" --set patience=null --results "$D"
minidl sweep --models attention --hidden 128 --seeds 0,1,2 "${SFINE[@]}" --set warmup_steps=200 --set word_dropout=0.1 \
    "${TAUGHT_GRU[@]}" --set patience=null --epochs 5 --results "$D"

# 9. first 100 words with table 4's GRU teacher and the 50,000 unlabelled reviews (table 4's rows are
#    run_all.sh step 5's: all 3 epochs, the best check kept): the GRU, the RNN, TokenMLP and SoftmaxWeighted
#    stopping early instead (patience 4, table 4's rows until 2026-12-05; 3 seeds); TokenMLP and
#    SoftmaxWeighted (the skip-gram vectors fine-tuned at 1e-4) with the vectors frozen, as their recipe on the
#    labels alone, and with a 30,000-word vocabulary (seed 0, patience 4), and with the learning rate warmed up
#    over 200 steps then decayed linearly to 0 (3 seeds, all 3 epochs)
minidl sweep --models gru --hidden 64 --seeds 0,1,2 "${SFINE[@]}" --set embedding_freeze_steps=700 "${TAUGHT_GRU[@]}" \
    --results "$D"
minidl sweep --models rnn --hidden 64 --seeds 0,1,2 "${SFINE[@]}" "${TAUGHT_GRU[@]}" --results "$D"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" --seeds 0,1,2 "${SFINE[@]}" "${TAUGHT_GRU[@]}" --results "$D"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" --seeds 0 "${COMMON[@]}" --set "embeddings=\"$SGNS\"" \
    "${TAUGHT_GRU[@]}" --results "$D"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" --seeds 0 "${FINE[@]}" --set "embeddings=\"$SGNS\"" \
    "${TAUGHT_GRU[@]}" --set max_vocab=30000 --results "$D"
minidl sweep --models mlp,softmax --hidden "[64,32,16]" --seeds 0,1,2 "${SFINE[@]}" "${TAUGHT_GRU[@]}" \
    --set warmup_steps=200 --set patience=null --results "$D"
#    and table 4's per-word rows again with two threads a job instead of one (one worker; float sums round
#    otherwise, as in a rerun on another machine), into a file of their own: a sweep does not count threads
minidl sweep --workers 1 --models mlp,softmax --hidden "[64,32,16]" --seeds 0,1,2 "${SFINE[@]}" "${TAUGHT_GRU[@]}" \
    --set patience=null --results "$R/imdb_100_distilled_two_threads.jsonl"
