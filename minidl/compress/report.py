"""``minidl compress-report``: every compression method applied to one trained teacher, in one table.

For each variant the report saves the model in its compressed format, loads that file into a
freshly built model (so every number below comes from a model that really round-tripped
through disk), and measures, in the same run on the same test reviews:

    parameters   numbers stored for the weights (int8 ones included)
    non-zeros    of those, the ones that are not exactly 0
    size_mb      the saved file (weights only: no vocabulary, no optimizer state)
    loss, accuracy, f1, precision, recall     on the test split
    reviews_per_s                              evaluation speed (batch 128, eval mode), timed for
                                               every row at the end, back to back (``measure_speed``);
                                               int8 rows run the device's int8 linear (an int8 GEMM
                                               with ``--device torch``, see ``quantize``)

Variants (``group``): the teacher and the causal decoder; distilled students (≥ 4× fewer
parameters; one trained on labels only for comparison); one-shot global magnitude pruning of
the Linears at 10/20/50/80/90 %, each without retraining and fine-tuned with the mask locked
(the first course project's procedure), per-layer L1 pruning at 20 %, and one row with the
embedding table inside the global threshold (the lesson: its N(0, 1) entries dwarf the
Linears' ±1/√D, so the Linears lose more: its note says what they kept); gradual magnitude pruning of every weight
matrix at 50/80/90 % on the cubic schedule with distillation and a locked mask (Prune Once for All);
structured pruning (heads and FFN neurons physically removed) then distillation; low-rank
factorisation of the encoder's Linears at 25/50/75 % of their parameters, fine-tuned with
distillation (50 % also before fine-tuning); int8 after training (PTQ) and with
quantisation-aware training (QAT), for the teacher and for gradual 90 %. The "pruned
weights" column says which weights a pruning row pruned, under one threshold or per layer.
``minidl compress prune | qat | lowrank-sweep`` make single rows (or the rank sweep) into
the same results file.

Fine-tuning uses ``fine_tune`` training reviews (one pass), gradual pruning ``gradual_epochs``
passes over ``gradual_tune`` reviews (default: the same ones), students the whole training set; all share the teacher's logits, computed
once. Rows are appended to ``results.jsonl`` as they finish, so an interrupted report resumes
where it stopped; the files of the rows it reuses are saved again in today's formats before the
timing (``rewrite_files``), so every size is that of the current save code.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time

import numpy as np

import minidl as md

from ..data.batching import subset
from ..data.errors import DataFormatError
from ..io import (CheckpointError, check_replaceable, check_writable, checkpoint_file, drop_truncated_tail, file_sha256,
                  read_npz, save_figure, write_text)
from ..models import build_model
from ..nn import Linear, Module
from ..train.checkpoint import as_option, check_data, differences, load_classifier
from ..train.config import ConfigError
from ..train.prepare import prepare
from ..train.trainer import evaluate
from .distill import distill, teacher_logits_table
from .lowrank import factorize
from .prune import (GradualPruning, LockedMasks, load_sparse, prune_global_magnitude, prune_l1_per_layer,
                    save_sparse, sparsity_report, weight_matrices)
from .qat import convert_qat, prepare_qat
from .rank_sweep import default_ranks, plot_rank_sweep, rank_sweep
from .quantize import quantize, stored_numbers
from .structured import load_structured, prune_ffn_neurons, prune_heads, save_structured

PRUNE_LEVELS = (0.1, 0.2, 0.5, 0.8, 0.9)
GRADUAL_LEVELS = (0.5, 0.8, 0.9)  # each ~20 minutes of the report's 3 hours on two cores
LOWRANK_FRACTIONS = (0.25, 0.5, 0.75)
METRICS = ("loss", "accuracy", "f1", "precision", "recall")


def lowrank_ranks(model, fraction):
    """{encoder Linear name: rank} giving each of the encoder's Linears ``fraction`` of its parameters:
    r (D_in + D_out) ≈ fraction · D_in D_out (a Linear too small for rank 1 to save that much is left out)."""
    return {name: int(fraction * m.in_features * m.out_features / (m.in_features + m.out_features))
            for name, m in model.named_modules() if isinstance(m, Linear) and name.startswith("encoder.")
            and fraction * m.in_features * m.out_features >= m.in_features + m.out_features}


class CompressionReport:
    """Builds the variants of one teacher; ``run()`` measures them all (see the module docstring)."""

    def __init__(self, teacher_path, out, decoder_path=None, device="cpu", fine_tune=8000, student_epochs=2,
                 gradual_epochs=2, gradual_tune=None, test_limit=None, lr=3e-4, student_lr=2e-3, seed=0, log=print,
                 reuse_all=False):
        check_out(out, teacher=teacher_path, decoder=decoder_path)   # before the data and the teacher load
        # (a folder or a missing file named in one line, before its SHA-256 is taken)
        self.teacher, vocab, _, self.label_names, self.config = load_classifier(teacher_path, device)
        if self.config.model != "transformer":   # an RNN's rows claimed compression that never happened
            raise ConfigError(f"--teacher {teacher_path} is a {self.config.model}; the compression report and "
                              f"commands take a transformer (minidl train --model transformer)")
        # what every row depends on: rows of another teacher or other settings in --out are refused, not reused
        self.setup = {"teacher": file_sha256(teacher_path), "test_limit": test_limit, "fine_tune": fine_tune,
                      "device": str(device)}
        self.depends = {"student_epochs": student_epochs, "gradual_epochs": gradual_epochs,
                        "gradual_tune": gradual_tune, "decoder": decoder_path and file_sha256(checkpoint_file(decoder_path))}
        self.seed, self.out = seed, out
        rows = _read_rows(os.path.join(out, "results.jsonl"), {**self.setup, "seed": seed})   # before the data are
        if reuse_all:   # prepared (7 s on IMDB), as is each row compress-report reuses (the others build only theirs)
            self.check_rows(rows)
        self.device, self.log, self.lr, self.student_lr = device, log, lr, student_lr
        self.gradual_epochs = gradual_epochs
        self.teacher_path, self.student_epochs = teacher_path, student_epochs
        prepared = prepare(dataclasses.replace(self.config, **check_data(teacher_path)))   # from another folder too
        if prepared.vocab.to_dict() != vocab.to_dict():
            raise ValueError(f"{teacher_path}: its vocabulary differs from the one rebuilt from its data settings; "
                             f"was the data changed since it was trained?")
        self.train, self.test = prepared.train, subset(prepared.test, test_limit, 0)  # the same reviews for every seed
        self.fine_tune, self.gradual_tune_reviews = fine_tune, gradual_tune
        self.vocab_size, self.vocab = len(vocab), vocab
        self.settings = {**self.config.model_config(), "embed_dim": self.teacher.embed_dim}
        self.decoder = decoder_path and self._load_decoder(decoder_path)    # refused now, not after the first rows
        self._shared = {}  # the teacher's logits, computed once, also for with_seed's copies
        self._start(seed, out)

    def row_setup(self, name, group):
        """What the row ``name`` depends on: the setup of every row, its own settings (students: their
        epochs; gradual rows: theirs and their reviews; the decoder: its file) and the seed."""
        own = (["student_epochs"] if group == "students" else ["gradual_epochs", "gradual_tune"]
               if name.startswith("gradual") else ["decoder"] if name == "decoder" else [])
        return {**self.setup, **{key: self.depends[key] for key in own}, "seed": self.seed}

    def check_rows(self, rows=None):
        """Refuse, before any work, the ``rows`` (default: --out's) ``run`` and the timing could not reuse: one of
        other settings than its own now (a student of other epochs was printed as the new one), or a
        decoder row without --decoder (it crashed after every other row)."""
        for row in self.rows if rows is None else rows:
            if row["name"] == "decoder" and not self.depends["decoder"]:
                raise ConfigError(f"{self.path_of(row)}: --out holds a decoder row; give its --decoder again, or "
                                  f"another --out")
            self._check_row(row)

    def _check_row(self, row):
        if changed := _setup_changes(row, self.row_setup(row["name"], row.get("group"))):
            raise ConfigError(f"--out's row {row['name']!r} was measured with other settings ({changed}); give "
                              f"another --out, or delete its results.jsonl to measure again")

    def _load_decoder(self, path):
        """(decoder, its settings): a classifier of the teacher's kind (a causal one) and labels."""
        decoder, vocab, _, labels, config = load_classifier(path, self.device)
        if config.model != self.config.model:
            raise CheckpointError(f"--decoder {path} is a {config.model}, not a {self.config.model} like the "
                                  f"teacher; train one with minidl train --model {self.config.model} --model-options "
                                  f"'{{\"causal\": true}}'")
        if labels != self.label_names:
            raise CheckpointError(f"--decoder {path} has the labels {labels}, the teacher {self.label_names}; train "
                                  f"it on the teacher's data")
        if vocab.to_dict() != self.vocab.to_dict():   # it read the teacher's ids as its own words
            raise CheckpointError(f"--decoder {path} has another vocabulary than the teacher; train it on the "
                                  f"teacher's data and settings")
        return decoder, {**config.model_config(), "embed_dim": decoder.embed_dim}

    def _start(self, seed, out):
        """What depends on the seed (the fine-tuning reviews) and on the output folder (the rows)."""
        self.seed, self.out = seed, out
        self.tune = subset(self.train, self.fine_tune, seed)
        self.gradual_tune = (self.tune if self.gradual_tune_reviews is None
                             else subset(self.train, self.gradual_tune_reviews, seed))
        self.results_path = os.path.join(out, "results.jsonl")
        self.rows = _read_rows(self.results_path, {**self.setup, "seed": seed})
        self.loaders = {}  # row name -> load(path) -> a fresh model with that file's weights
        self.savers = {}   # row name -> save(model, path), the format that row is stored in

    def with_seed(self, seed, out):
        """This report under another ``seed``, writing into ``out``: the teacher, the data and the
        teacher's logits (none depends on the seed) are shared, the fine-tuning reviews drawn anew
        (``check_out(out)`` first: ``out``'s rows of other settings are refused here, its files not)."""
        other = copy.copy(self)
        other._start(seed, out)
        return other

    # --- building blocks --------------------------------------------------------------------------
    def fresh(self, **changes):
        """A new model of the teacher's architecture (``changes`` override its settings)."""
        md.manual_seed(self.seed)
        return build_model(self.config.model, self.vocab_size, num_classes=len(self.label_names),
                           device=self.device, **{**self.settings, **changes})

    def load_sparse(self, path):
        """A fresh model of the teacher's architecture with the pruned weights of ``path`` (``save_sparse``)."""
        return _loaded(self.fresh(), path, load_sparse)

    def load_lowrank(self, path):
        """A fresh model of the teacher's architecture with the factorised Linears of ``path``, their
        ranks read back from the saved factor shapes (A is (D_in, r))."""
        model = self.fresh()
        factorize(model, rank={key[:-len(".A")]: int(value.shape[1]) for key, value in read_npz(path).items()
                               if key.endswith(".A")})
        return _loaded(model, path)

    def teacher_copy(self):
        model = self.fresh()
        model.load_state_dict(self.teacher.state_dict())
        return model

    def teacher_logits(self):
        """The teacher's logits for every training review, computed once (by ``batch.index``)."""
        if "logits" not in self._shared:
            self._shared["logits"] = teacher_logits_table(self.teacher, self.train, 128, self.device,
                                                          self.log and "the teacher's logits")
        return self._shared["logits"]

    def distill_into(self, student, data, epochs=1, alpha=0.5, lr=None, callbacks=()):
        return distill(student, self.teacher, data, epochs=epochs, lr=lr or self.lr, alpha=alpha, temperature=2.0,
                       seed=self.seed, device=self.device, teacher_logits=self.teacher_logits(),
                       callbacks=callbacks, progress=self.log is not None, log=None)   # a bar: it was silent

    # --- measuring one variant --------------------------------------------------------------------
    def record(self, name, group, make, save, load, note="", scope=""):
        """Build the variant (``make()`` -> model), ``save(model, path)``, ``load(path)`` -> a fresh
        model, and score the reloaded model on the test split (``note``: text, or a function of the
        reloaded model giving what it measured). Skipped if ``results.jsonl`` already has ``name``
        (its loader is still kept, for ``measure_speed``); -> ``name``."""
        self.loaders[name], self.savers[name] = load, save
        for row in self.rows:
            if row["name"] == name:
                self._check_row(row)   # (keys an older row lacks are not held against it)
                return name
        if self.log:
            self.log(f"{name:<32} building and scoring ...")
        start = time.perf_counter()
        model = make()
        built = time.perf_counter() - start
        path = os.path.join(self.out, "models", f"{name.replace(' ', '_').replace('%', 'pct')}.npz")
        save(model, path)
        reloaded = load(path)
        parameters, nonzeros = stored_numbers(reloaded)
        metrics = evaluate(reloaded, self.test, device=self.device)
        row = {"name": name, "group": group, "parameters": int(parameters), "nonzeros": int(nonzeros),
               "size_mb": os.path.getsize(path) / 1e6, **{k: float(metrics[k]) for k in METRICS},
               "reviews_per_s": None, "build_seconds": built, "note": note(reloaded) if callable(note) else note,
               "scope": scope, "file": path, "setup": self.row_setup(name, group)}
        self.rows.append(row)
        _append_row(self.results_path, row)
        if self.log:
            self.log(f"{name:<32} acc {row['accuracy']:.4f}  {row['size_mb']:7.2f} MB  (built in {built:.0f} s)")
        return name

    def measure_speed(self, reviews=2000, repeats=3):
        """Evaluation speed of every row, all timed here, one after the other, so they compare:
        each saved file is loaded again and scored ``repeats`` times on the same ``reviews``
        test reviews after one warm-up pass (which also packs int8 weights, once, so packing is
        not timed); reviews/s is that of the fastest pass (the least disturbed by whatever else
        the machine did). Rewrites ``results.jsonl``."""
        timed = subset(self.test, reviews, self.seed + 1)
        for row in self.rows:
            model = self._format(row)[0](self.path_of(row))
            evaluate(model, subset(timed, 256), device=self.device)            # warm-up
            best = float("inf")
            for _ in range(repeats):
                tick = time.perf_counter()
                evaluate(model, timed, device=self.device)
                best = min(best, time.perf_counter() - tick)
            row["reviews_per_s"] = len(timed) / best
            if self.log:
                self.log(f"{row['name']:<32} {row['reviews_per_s']:8.0f} reviews/s")
        _write_rows(self.results_path, self.rows)
        return self.rows

    def rewrite_files(self):
        """Save every row's model again, from its file, with today's save code, and take its size
        anew: a resumed report's sizes are those of the current formats (say, once ``save_sparse``
        deflates). The rewritten file must load to exactly the arrays the old one held, so the
        row's scores still describe it. Rewrites ``results.jsonl``."""
        for row in self.rows:
            load, save = self._format(row)
            path = self.path_of(row)
            model = load(path)
            before = model.state_dict()
            save(model, path)
            after = load(path).state_dict()
            if before.keys() != after.keys() or any(not np.array_equal(before[k], after[k]) for k in before):
                raise RuntimeError(f"{path}: saving it again changed its weights; its row would no longer describe it")
            row["size_mb"] = os.path.getsize(path) / 1e6
        _write_rows(self.results_path, self.rows)
        return self.rows

    def _format(self, row):
        """(load, save) of a row's file: as its builder registered them, or, for a row that
        ``minidl compress prune`` made at a level the report does not build, the pruned rows'
        (it was a KeyError after every row was built)."""
        if row["name"] in self.loaders:
            return self.loaders[row["name"]], self.savers[row["name"]]
        if row.get("group") == "one-shot pruning":
            return self.load_sparse, save_sparse
        raise ConfigError(f"{self.path_of(row)}: no way to load the row {row['name']!r} of --out; give another --out")

    # --- the variants ---------------------------------------------------------------------------------
    def run(self, levels=PRUNE_LEVELS, fractions=LOWRANK_FRACTIONS, gradual_levels=GRADUAL_LEVELS):
        """Measure every variant (the ones the acceptance asks about first) and return the rows."""
        self.teacher_row()
        self.control_row()
        if self.decoder:
            decoder, decoder_settings = self.decoder
            pooling = "last-token" if decoder.pooling == "last" else decoder.pooling     # what the note says it is
            self.record("decoder", "teacher", lambda: decoder, Module.save,
                        lambda path: _loaded(self.fresh(**decoder_settings), path),
                        note=f"{'causal' if decoder.causal else 'not causal'}, {pooling} pooling")
        self.qat_rows()
        self._students()
        self._lowrank(fractions)
        for amount in gradual_levels:
            self.record(f"gradual {amount:.0%} + KD", "gradual pruning", lambda a=amount: self._gradual(a),
                        save_sparse, self.load_sparse,
                        note="each weight matrix on the cubic schedule, distilled", scope="all, per layer")
        top = f"gradual {max(gradual_levels):.0%}"
        for method, to_int8, note in (("int8", _quantized, "post-training int8 non-zeros"),
                                      ("QAT", self._qat, "QAT with the mask locked, int8 non-zeros")):
            self.record(f"{top} + {method}", "int8", lambda f=to_int8: f(self.load_sparse(self.file_of(f"{top} + KD"))),
                        save_sparse, lambda path: _loaded(_quantized(self.fresh()), path, load_sparse), note=note)
        self._one_shot_rows(levels)
        self._structured()
        return ordered(self.rows)

    def _one_shot_rows(self, levels):
        """The first course project's procedure: one global threshold over the Linears, then
        fine-tuning with the mask locked; per-layer 20 %; and the embedding-included lesson."""
        for amount in levels:
            for tuned in (False, True):
                self.prune_row(amount, tuned=tuned)
        self.prune_row(0.2, per_layer=True)
        self.prune_row(0.2, scope="all")

    def teacher_row(self):
        """The reference row every other row is read against; -> its name."""
        self.record("teacher", "teacher", self.teacher_copy, Module.save, lambda path: _loaded(self.fresh(), path),
                    note=f"{self.config.model}, hidden {self.config.hidden}, max length {self.config.max_length}")
        return "teacher"

    def control_row(self):
        """The teacher after the same distilled pass over the ``fine_tune`` reviews that every
        fine-tuned row gets, uncompressed: the fair reference for those rows; -> its name."""
        return self.record("teacher + KD pass", "teacher", lambda: self._tuned(self.teacher_copy()), Module.save,
                           lambda path: _loaded(self.fresh(), path),
                           note="the teacher, one distilled pass over the fine-tuning reviews: the fine-tuned rows' "
                                "reference")

    def seeded_rows(self):
        """The fine-tuned rows whose differences from the teacher are under a point, the ones
        ``minidl compress seeds`` repeats under other seeds; -> their names."""
        return [self.control_row(), self.qat_rows(ptq=False)[-1], self.prune_row(0.2, tuned=True),
                *self._lowrank((0.5,), untuned=False), *self._students(only="student transformer")]

    def prune_row(self, amount, scope="linear", tuned=False, per_layer=False):
        """One one-shot pruning row (``minidl compress prune`` makes one): ``amount`` of the
        weights of ``scope`` under one threshold (or ``per_layer``), fine-tuned on the
        ``fine_tune`` reviews with the mask locked if ``tuned``; -> its name."""
        name = (f"per-layer L1 {_percent(amount)}" if per_layer else f"one-shot {_percent(amount)}") + (
            ", embedding included" if scope == "all" else "") + (" + locked FT" if tuned else "")
        note = "then fine-tuned with the mask locked" if tuned else "no retraining"
        if scope == "all" and not per_layer:   # the lesson as measured: "... empty the Linears" was said where false
            note = lambda model, before=note: (  # noqa: E731
                f"{before}; with the N(0, 1) embedding under one threshold the Linears kept {_linears_kept(model):.0%} "
                f"of their weights (alone: {1 - amount:.0%})")
        weights = f"{'Linears' if scope == 'linear' else 'all'}, {'per layer' if per_layer else 'global'}"
        return self.record(name, "one-shot pruning", lambda: self._one_shot(amount, scope, tuned, per_layer),
                           save_sparse, self.load_sparse, note=note, scope=weights)

    def qat_rows(self, ptq=True):
        """int8 after training (if ``ptq``) and with quantisation-aware training, side by side;
        -> their names."""
        load = lambda path: _loaded(_quantized(self.fresh()), path)  # noqa: E731
        names = [self.record("int8", "int8", lambda: _quantized(self.teacher_copy()), Module.save, load,
                             note="post-training, Linears and embedding")] if ptq else []
        return names + [self.record("int8 QAT + KD", "int8", lambda: self._qat(self.teacher_copy()), Module.save, load,
                                    note="fake-quantised Linears fine-tuned with distillation, then int8")]

    def rank_sweep(self, ranks=None, fine_tune=True, min_size=1024):
        """SVD ranks from 2 to full for every factorisable Linear at once (``compress.rank_sweep``),
        scored on the test reviews before and after a distilled fine-tune on the ``fine_tune``
        reviews; -> the rows (also written to rank_sweep.jsonl and plotted)."""
        ranks = ranks or default_ranks(self.teacher, min_size)
        path = os.path.join(self.out, "rank_sweep.jsonl")
        setup = {**self.setup, "seed": self.seed, "min_size": min_size, "fine_tuned": bool(fine_tune)}
        kept = _kept_ranks(path, setup)   # a rerun (an interrupted sweep) reuses its ranks; another sweep is refused
        todo = [rank for rank in ranks if rank not in kept]

        def done(rows):   # each finished rank is kept (an interrupted sweep keeps its rows) and said
            rows[-1]["setup"] = setup
            _write_rows(path, sorted([*kept.values(), *rows], key=lambda row: row["rank"]))
            if self.log:
                scores = "  ".join(f"{when} {rows[-1][when]['accuracy']:.4f}" for when in ("before", "after")
                                   if rows[-1][when])
                self.log(f"rank {rows[-1]['rank']:<6} {rows[-1]['params_ratio']:6.1%} of the parameters  {scores}"
                         f"  ({len(rows) + len(ranks) - len(todo)} of {len(ranks)} ranks)")

        if self.log and len(todo) < len(ranks):
            self.log(f"reusing {len(ranks) - len(todo)} of the {len(ranks)} ranks from {path}")
        new = rank_sweep(self.teacher_copy, todo, lambda model: evaluate(model, self.test, device=self.device),
                         fine_tune=self._tuned if fine_tune else None, min_size=min_size, on_row=done) if todo else []
        rows = sorted([*kept.values(), *new], key=lambda row: row["rank"])
        plot_rank_sweep(rows, os.path.join(self.out, "rank_sweep"),
                        title=f"{self.teacher_path}: accuracy against SVD rank")
        return rows

    def file_of(self, name):
        return self.path_of(next(row for row in self.rows if row["name"] == name))

    def path_of(self, row):
        """The file of ``row``, by its name in --out's models/ folder: a row's "file" is where it was first written,
        from the folder that command ran in (a copied --out, or one run from elsewhere, read another's files)."""
        return os.path.join(self.out, "models", os.path.basename(row["file"]))

    def _students(self, only=None):
        """The distilled students (``only``: that one, distilled); -> the names recorded."""
        width = max(4, self.config.hidden // 4)
        heads = 2 if width % 2 == 0 else 1
        students = {
            "student transformer": ("transformer", dict(hidden=width, embed_dim=width, num_heads=heads,
                                                        num_layers=1, d_ff=2 * width)),
            "student GRU": ("gru", dict(hidden=width, embed_dim=width)),
            "student TokenMLP": ("mlp", dict(hidden=[width], embed_dim=width)),
        }
        keep = {k: self.settings[k] for k in ("max_len", "dropout") if k in self.settings}
        names = []
        for name, (kind, sizes) in students.items():
            if only and name != only:
                continue
            sizes = {**sizes, **(keep if kind == "transformer" else {"dropout": keep.get("dropout", 0.0)})}
            build = lambda kind=kind, sizes=sizes: build_model(  # noqa: E731
                kind, self.vocab_size, num_classes=len(self.label_names), device=self.device, **sizes)
            label = f"{kind}, width {width}"
            names.append(self.record(f"{name} + KD", "students", lambda b=build: self._student(b(), alpha=0.5),
                                     Module.save, lambda path, b=build: _loaded(b(), path), note=f"{label}, distilled"))
            if kind == "transformer" and not only:
                names.append(self.record(f"{name}, labels only", "students",
                                         lambda b=build: self._student(b(), alpha=1.0), Module.save,
                                         lambda path, b=build: _loaded(b(), path), note=f"{label}, no teacher"))
        return names

    def _tuned(self, model, callbacks=()):
        """``model`` after one distilled pass over the ``fine_tune`` reviews (``callbacks``: e.g. a mask lock)."""
        self.distill_into(model, self.tune, callbacks=callbacks)
        return model

    def _student(self, model, alpha):
        md.manual_seed(self.seed)
        self.distill_into(model, self.train, epochs=self.student_epochs, alpha=alpha, lr=self.student_lr)
        return model

    def _one_shot(self, amount, scope, tuned, per_layer=False):
        model = self.teacher_copy()
        (prune_l1_per_layer if per_layer else prune_global_magnitude)(model, amount, scope=scope)
        return self._tuned(model, callbacks=[LockedMasks()]) if tuned else model

    def _qat(self, model):
        """Quantisation-aware training: fake-quantised Linears fine-tuned with distillation on
        the ``fine_tune`` reviews, every mask locked (the embedding table's too: it is not
        fake-quantised, and without the lock its pruned entries would grow back), then
        converted to int8 (embedding too)."""
        prepare_qat(model)
        self._tuned(model, callbacks=[LockedMasks()])
        convert_qat(model, embeddings=True)
        return model

    def _gradual(self, amount):
        """Every weight matrix pruned to the same sparsity on the cubic schedule from 0 to
        ``amount`` over the first 70 % of ``gradual_epochs`` passes over the ``gradual_tune``
        reviews, pruning 20 times; the last 30 % fine-tune with the mask locked."""
        model = self.teacher_copy()
        steps = self.gradual_epochs * -(-len(self.gradual_tune) // 32)
        end = max(1, int(0.7 * steps))
        schedule = GradualPruning(model, 0.0, amount, start=0, end=end, every=max(1, end // 20),
                                  parameters=weight_matrices(model), threshold="layer")
        self.distill_into(model, self.gradual_tune, epochs=self.gradual_epochs, callbacks=[schedule])
        return model

    def _structured(self):
        def make():
            model = self.teacher_copy()
            prune_heads(model, 0.5)
            prune_ffn_neurons(model, 0.5)
            return self._tuned(model)

        self.record("structured 50% heads+FFN + KD", "structured", make,
                    save_structured, lambda path: _loaded(self.fresh(), path, load_structured),
                    note="round(h/2) heads (each layer keeps one) and half the FFN neurons removed, distilled")

    def _lowrank(self, fractions, untuned=True):
        """Encoder Linears at ``fractions`` of their parameters, fine-tuned (50 % also before,
        if ``untuned``); -> the names recorded."""
        names = []

        def factorized(fraction, fine_tune):
            model = self.teacher_copy()
            factorize(model, rank=lowrank_ranks(model, fraction))
            return self._tuned(model) if fine_tune else model

        for fraction in fractions:
            if not lowrank_ranks(self.teacher, fraction):
                if self.log:   # (such rows were the teacher itself, under a note that said otherwise)
                    self.log(f"no low-rank {fraction:.0%} rows: the encoder's Linears are too small to save that")
                continue
            if fraction == 0.5 and untuned:
                names.append(self.record("low-rank 50%, no fine-tune", "low-rank", lambda: factorized(0.5, False),
                                         Module.save, self.load_lowrank,
                                         note="encoder Linears at half their parameters"))
            names.append(self.record(f"low-rank {fraction:.0%} + KD", "low-rank",
                                     lambda f=fraction: factorized(f, True), Module.save, self.load_lowrank,
                                     note=f"encoder Linears at {fraction:.0%} of their parameters, fine-tuned"))
        return names


GROUPS = ("teacher", "students", "one-shot pruning", "gradual pruning", "structured", "low-rank", "int8")


def ordered(rows):
    """Rows grouped as in GROUPS (the order the table reads best in), measuring order within a group."""
    return sorted(rows, key=lambda r: GROUPS.index(r["group"]) if r["group"] in GROUPS else len(GROUPS))


def _loaded(model, path, load=Module.load):
    """``model`` with the weights of ``path``, read by ``load(model, path)`` (default: ``Module.load``)."""
    load(model, path)
    return model


def _linears_kept(model):
    """The fraction of the Linears' weights of ``model`` that are not 0."""
    return 1 - sparsity_report(model, names=weight_matrices(model, embeddings=False)).sparsity


def _quantized(model):
    quantize(model, embeddings=True)
    return model


# what the commands write beside results.jsonl
FIGURES = ("accuracy_vs_size", "accuracy_vs_speed", "rank_sweep")
OUTPUTS = ("results.md", "seeds.md", "rank_sweep.jsonl", *(f"{name}.{ext}" for name in FIGURES for ext in ("png", "svg")))


def _percent(amount):
    """0.5 -> "50%", 0.125 -> "12.5%": the exact level, so 0.504 is not the 50 % row (nor 0.001 "0%")."""
    return f"{amount * 100:.6g}%"


def check_out(out, **inputs):
    """Refuse, before any work, an ``out`` the rows cannot go to: no folder this user can write, one holding an
    input (``inputs``: option -> checkpoint) in its models/, or outputs there that are not a report's."""
    check_writable(out, folder=True)
    # an input in models/, where the rows' files are written, in its own message before models/'s (a teacher at
    # OUT/models/teacher.npz was replaced by a bare weights file)
    models = os.path.realpath(os.path.join(out, "models"))
    for option, path in inputs.items():
        if path and os.path.commonpath([os.path.realpath(path), models]) == models:
            raise ConfigError(f"--{option} {path} lies in --out's models/ folder, where the report writes its rows' "
                              f"files; move it out, or give another --out")
    rows, sweep = os.path.join(out, "results.jsonl"), os.path.join(out, "rank_sweep.jsonl")
    # the outputs are the rows' (or, where a rank sweep alone ran, its rows'); so is models/, where a
    # user's files (a training checkpoint among them) were replaced by the rows' models without a word
    check_replaceable(sweep if os.path.exists(sweep) and not os.path.exists(rows) else rows,
                      lambda path: path == rows or _is_rank_sweep(path), "minidl compress", f"--out {out}:",
                      beside=[os.path.join(out, name) for name in (*OUTPUTS, "models")])


def _setup_changes(row, setup):
    """How ``row`` was measured otherwise than ``setup`` says, on the keys the row records (rows of
    older versions record fewer, or none); "" when it was measured so."""
    saved = row.get("setup", {})
    return differences(saved, {key: value for key, value in setup.items() if key in saved},
                       lambda key: _OPTIONS.get(key) or as_option(key))


# the options of the recorded settings whose names differ (the files' hashes are recorded, not their paths)
_OPTIONS = {"fine_tune": "--fine-tune (--fine-tune-reviews)", "fine_tuned": "fine-tuned (not with --no-fine-tune)",
            "teacher": "--teacher (its SHA-256)", "decoder": "--decoder (its SHA-256)"}


def _jsonl(path):
    """The JSON values of the non-empty lines of ``path`` (none when it is missing); ValueError if one is no JSON,
    but for a last line an interrupted write left without its newline (it blocked every resume), left out."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        *lines, last = f.read().split("\n")
    rows = [json.loads(line) for line in lines if line.strip()]
    try:
        return rows + ([json.loads(last)] if last.strip() else [])
    except ValueError:   # the last line cut short
        return rows


def _append_row(path, row):
    """Append ``row`` as one line (commands sharing an --out keep each other's rows, which rewriting the file
    would not), after a last line that an interrupted write cut short."""
    drop_truncated_tail(path, "that row is measured again")
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")   # one write of one complete line


def _read_rows(path, setup):
    """The rows already in ``path``; a file that is not a report's, or rows measured with another
    ``setup`` (teacher file, test reviews, fine-tuning reviews, seed), are refused in one line."""
    try:
        rows = _jsonl(path)
    except ValueError:
        rows = None
    if rows is None or not all(isinstance(row, dict) and "name" in row for row in rows):
        raise DataFormatError(f"{path} is not the results.jsonl of a compression report; give another --out")
    for row in rows:
        if changed := _setup_changes(row, setup):
            raise ConfigError(f"{path}: its row {row['name']!r} was measured with other settings ({changed}); give "
                              f"another --out, or delete the file to measure again")
    return rows


def _kept_ranks(path, setup):
    """{rank: row} of the sweep in ``path`` (none: {}), measured with ``setup``; a sweep of another teacher or
    other settings was replaced without a word, and is refused in one line."""
    rows = _jsonl(path)
    if changed := next((_setup_changes(row, setup) or "settings not recorded" for row in rows
                        if row.get("setup") != setup), None):
        raise ConfigError(f"--out's rank_sweep.jsonl holds a sweep of other settings ({changed}); give another "
                          f"--out, or move the file away to measure again")
    return {row["rank"]: row for row in rows}


def _is_rank_sweep(path):
    rows = _jsonl(path)
    return all(isinstance(row, dict) and {"rank", "factorised"} <= set(row) for row in rows)


def _write_rows(path, rows):
    write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


# --- writing the table and the plots --------------------------------------------------------------------
def format_table(rows):
    """The report as a Markdown table (the teacher's accuracy and speed are the references;
    speeds not measured yet, as for rows made one at a time by ``minidl compress``, read "-")."""
    teacher = next((r for r in rows if r["name"] == "teacher"), None)
    lines = ["| model | pruned weights | parameters | non-zeros | size (MB) | loss | accuracy | F1 | precision | "
             "recall | reviews/s | speed-up | note |", "|" + "---|" * 13]
    for r in rows:
        speed, reference = r.get("reviews_per_s"), (teacher or {}).get("reviews_per_s")
        lines.append(f"| {r['name']} | {r.get('scope') or '-'} | {r['parameters']:,} | {r['nonzeros']:,} | "
                     f"{r['size_mb']:.2f} | {r['loss']:.4f} | {r['accuracy']:.4f} | {r['f1']:.4f} | "
                     f"{r['precision']:.4f} | {r['recall']:.4f} | {f'{speed:.0f}' if speed else '-'} | "
                     f"{f'{speed / reference:.2f}×' if speed and reference else '-'} | {r['note']} |")
    return "\n".join(lines)


def seed_table(runs):
    """{seed: rows} -> a Markdown table of each row's test accuracy under every seed, their mean
    and (sample) standard deviation, and the mean's difference from the control row's
    ("teacher + KD pass", the same distilled pass without compression)."""
    seeds = sorted(runs)
    names = list(dict.fromkeys(row["name"] for seed in seeds for row in runs[seed]))
    accuracy = {(seed, row["name"]): row["accuracy"] for seed in seeds for row in runs[seed]}
    means = {name: np.mean([accuracy[s, name] for s in seeds if (s, name) in accuracy]) for name in names}
    control = means.get("teacher + KD pass")
    lines = ["| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd | mean - teacher + KD pass |",
             "|" + "---|" * (len(seeds) + 4)]
    for name in names:
        values = [accuracy[s, name] for s in seeds if (s, name) in accuracy]
        spread = f"{np.std(values, ddof=1):.4f}" if len(values) > 1 else "-"
        difference = f"{means[name] - control:+.4f}" if control is not None else "-"
        cells = " | ".join(f"{accuracy[s, name]:.4f}" if (s, name) in accuracy else "-" for s in seeds)
        lines.append(f"| {name} | {cells} | {means[name]:.4f} | {spread} | {difference} |")
    return "\n".join(lines)


def write_outputs(rows, out):
    """results.md (the table) and accuracy_vs_size.png / accuracy_vs_speed.png."""
    write_text(os.path.join(out, "results.md"), format_table(rows) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(r["group"] for r in rows))
    teacher = next((r for r in rows if r["name"] == "teacher"), None)
    for key, label, filename in (("size_mb", "size on disk (MB, log scale)", "accuracy_vs_size"),
                                 ("reviews_per_s", "evaluation speed (reviews/s, log scale)", "accuracy_vs_speed")):
        fig, ax = plt.subplots(figsize=(10, 5.5))
        shown = [r for r in rows if r.get(key)]
        for i, group in enumerate(groups):
            members = [r for r in shown if r["group"] == group]
            ax.scatter([r[key] for r in members], [r["accuracy"] for r in members], s=40, label=group,
                       color=plt.cm.tab10(i % 10), marker="o^sDvP*X"[i % 8])
        clusters = _label_clusters(shown, key)
        for r, text in clusters:
            ax.annotate(text, (r[key], r["accuracy"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
        if len(clusters) < len(shown):
            fig.text(0.01, 0.01, "points that share a spot share a label; results.md lists every row", fontsize=7,
                     color="grey")
        if teacher is not None:
            ax.axhline(teacher["accuracy"], color="grey", linewidth=0.8, linestyle="--", label="teacher accuracy")
        ax.set(xscale="log", xlabel=label, ylabel="test accuracy", title=f"Compression: accuracy against {label.split(' (')[0]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: points stay visible
        fig.tight_layout()
        save_figure(fig, os.path.join(out, filename), dpi=130)
        plt.close(fig)


def _label_clusters(rows, key, width=0.15, height=0.01):
    """[(row, label)]: rows whose labels would overlap (within ``width`` of a decade on the log-x
    axis and ``height`` of accuracy of the cluster's first row, the teacher's or the most
    accurate) share one label: two names, or the first and how many more."""
    clusters = []
    for r in sorted(rows, key=lambda r: (r["name"] != "teacher", -r["accuracy"])):
        x, y = math.log10(r[key]), r["accuracy"]
        home = next((c for c in clusters if abs(x - c[0]) <= width and abs(y - c[1]) <= height), None)
        if home is None:
            clusters.append((x, y, [r]))
        else:
            home[2].append(r)
    return [(members[0], " / ".join(m["name"] for m in members) if len(members) <= 2
             else f"{members[0]['name']} (+{len(members) - 1} more)") for _, _, members in clusters]


def main(args):
    """``minidl compress-report``: run (or resume) every variant, then write the table and plots."""
    report = CompressionReport(args.teacher, args.out, decoder_path=args.decoder, device=args.device,
                               fine_tune=args.fine_tune, student_epochs=args.student_epochs,
                               gradual_epochs=args.gradual_epochs, gradual_tune=args.gradual_tune,
                               test_limit=args.test_limit, seed=args.seed, reuse_all=True)
    report.run()
    report.rewrite_files()
    rows = ordered(report.measure_speed())
    write_outputs(rows, args.out)
    print(format_table(rows))
    print(f"\nwritten: {os.path.join(args.out, 'results.md')}, accuracy_vs_size.png, accuracy_vs_speed.png")
    return 0
