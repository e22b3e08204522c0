"""Training checkpoints: one ``.npz`` with everything needed to resume a run exactly, or to
classify new text later.

    model.<name>            the model's parameters
    optim.<i>.<moment>      the optimizer's per-parameter arrays
    rng.torch.<device>      torch generator states (the NumPy one is in the JSON)
    meta                    one JSON string: the TrainConfig, the vocabulary, the tokenizer,
                            the label names, the optimizer's step counts and hyper-parameters,
                            the loop's position (epoch, batch, step), the best score and the
                            history of evaluations

Written atomically (``minidl.io.write_npz``) and read without pickle.
"""
from __future__ import annotations

import os

from .. import backend as _backend
from ..data.text import Tokenizer
from ..data.vocab import Vocabulary
from ..data.errors import DataFormatError, DataNotFoundError
from ..io import CheckpointError, file_sha256, from_json_array, json_array, npz_meta, read_npz, write_npz
from ..models import build_model
from ..nn.module import pack_bool_arrays
from .config import TrainConfig, as_option, split_commas


def run_paths(out):
    """Where a run in the folder ``out`` keeps its checkpoints: {"last": out/last.npz, "best":
    out/best.npz}; {} without a folder."""
    return {kind: os.path.join(out, f"{kind}.npz") for kind in ("last", "best")} if out else {}


def save(path, model, optimizer, config, prepared, loop_state, teachers):
    """A classifier's checkpoint: the training state plus what ``load_classifier`` needs, and ``teachers``
    (``teacher_files(config)``, hashed once per run, not at every save) for a resume to check."""
    return save_state(path, model, optimizer, loop_state, config=config.to_dict(), vocab=prepared.vocab.to_dict(),
                      tokenizer=prepared.tokenizer.to_dict(), label_names=prepared.label_names,
                      data_files=prepared.files or {}, teacher_files=teachers)


def teacher_files(config):
    """{path: SHA-256} of the checkpoints ``--teacher`` names (a baseline's name is no file): a resumed run
    must learn from the teacher it learned from, not from a checkpoint trained again at that path since."""
    return {path: file_sha256(path) for path in split_commas(config.teacher or "") if os.path.isfile(path)}


def check_data(path, files=None, advice="restore the file, or train again"):
    """Refuse to read the data of the checkpoint at ``path`` again (its test split, or its
    training data to go on) when one of its own data files is not where it was or has changed
    since: the split would be other reviews, perhaps ones it was trained on (``advice``: what to
    do then). ``files``: the files as they are now (``prepare.data_files``; default: hashed
    here). Checkpoints from before files were recorded are taken as they are. -> {setting: the path to read}: as
    given, or from another folder the absolute path it was trained on (if that file is unchanged)."""
    found = {}
    for key, recorded in npz_meta(path).get("data_files", {}).items():
        option, file = as_option(key), recorded["file"]
        if not os.path.isfile(file) and os.path.isfile(recorded["absolute"]):   # run from another folder
            file = recorded["absolute"]
        if not os.path.isfile(file):   # a moved file: running from another folder cannot help
            raise DataNotFoundError(f"{path} was trained on {option} {file} ({recorded['absolute']}), which is not "
                                    f"here; it is not there either: {advice}")
        given = (files or {}).get(key)
        if given and os.path.abspath(given["file"]) != recorded["absolute"]:   # not a changed file: another one
            raise DataFormatError(f"{path} was trained on {option} {file}, and this run gives {option} "
                                  f"{given['file']}; give the same file")
        now = given["sha256"] if given else file_sha256(file)
        elsewhere = os.path.abspath(file) != recorded["absolute"] and os.path.isfile(recorded["absolute"])
        if now != recorded["sha256"] and elsewhere and file_sha256(recorded["absolute"]) == recorded["sha256"]:
            raise DataFormatError(f"{path} was trained on {option} {recorded['absolute']}; the {file} here is another "
                                  f"file: run from the folder it was trained in")
        if now != recorded["sha256"]:
            raise DataFormatError(f"{file} has changed since {path} was trained on it ({option}; its SHA-256 "
                                  f"differs), so its splits would be other reviews; {advice}")
        found[key] = file
    return found


def save_state(path, model, optimizer, loop_state, **meta):
    """Everything a run needs to go on exactly: the model's weights, the optimizer's state, the
    random generators and the core's loop record, plus ``meta`` (JSON values), atomically."""
    opt = optimizer.state_dict()
    steps = {str(i): int(entry["step"]) for i, entry in opt["state"].items() if "step" in entry}
    arrays = {f"optim.{i}.{name}": value for i, entry in opt["state"].items()
              for name, value in entry.items() if name != "step"}
    numpy_rng, torch_rng = _backend.rng_state()
    arrays.update(torch_rng)
    meta = {"format": "minidl-checkpoint-1", **meta, "optimizer": {"param_groups": opt["param_groups"], "steps": steps},
            "loop": loop_state, "rng_numpy": numpy_rng}
    return write(path, model, meta, arrays)


def write(path, model, meta, arrays=None):
    """``model``'s parameters (model.<name>), then ``arrays``, then ``meta`` as one JSON string,
    atomically: the layout of minidl's training and masked-LM checkpoints; -> ``path``."""
    arrays = {**{f"model.{name}": value for name, value in model.state_dict().items()}, **(arrays or {})}
    arrays["meta"] = json_array(meta)
    write_npz(path, pack_bool_arrays(arrays))   # pruning masks: 1 bit a weight
    return path


def read(path):
    """(meta dict, arrays) of a checkpoint; a clear error if it is not a minidl training checkpoint."""
    arrays = read_npz(path)
    if "meta" not in arrays:
        raise CheckpointError(f"{path!r} is an .npz without minidl training metadata (a bare model.save() "
                              f"file?); minidl train writes complete checkpoints")
    try:
        meta = from_json_array(arrays.pop("meta"))
    except ValueError as e:
        raise CheckpointError(f"{path!r}: its metadata is not valid JSON; the file is damaged") from e
    if meta.get("format") != "minidl-checkpoint-1":
        other = ("a masked-LM checkpoint (minidl mlm): use it with minidl fill-mask, minidl serve --teacher/--student "
                 "or minidl mlm finetune" if meta.get("format") == "minidl-mlm-1"
                 else f"not a minidl training checkpoint (format {meta.get('format')!r})")
        raise CheckpointError(f"{path!r} is {other}")
    return meta, arrays


def model_arrays(arrays):
    """The model's parameters from a checkpoint's arrays, under their module names."""
    return {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}


def differences(saved, now, named=str):
    """"key <saved>, now <now>" for each key of ``now`` whose value differs in ``saved``, comma-separated:
    why a run, or rows, cannot go on with the settings given now ("" when nothing differs). ``named(key)``:
    how the key is named; a command names its option (``as_option``: --train-limit, which a user typed)."""
    return ", ".join(f"{named(key)} {saved.get(key)!r}, now {now[key]!r}" for key in sorted(now)
                     if saved.get(key) != now[key])


def resume(path, model, optimizer, schedule=None, *, missing, check=None):
    """Put the run saved at ``path`` back as it was: weights, optimizer state, random generators
    and the schedule's position; -> (meta, the core's loop record). No file at ``path``:
    FileNotFoundError(``missing``). ``check(meta)`` may refuse the file before anything is restored."""
    if not path or not os.path.exists(path):
        raise FileNotFoundError(missing)
    meta, arrays = read(path)
    if check is not None:
        check(meta)
    model.load_state_dict(model_arrays(arrays))
    state = {}
    for key, value in arrays.items():
        if key.startswith("optim."):
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = value
    for i, step in meta["optimizer"]["steps"].items():
        state.setdefault(int(i), {})["step"] = step
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    _backend.set_rng_state(meta["rng_numpy"], arrays)
    loop = meta["loop"]
    if schedule is not None:
        schedule.load_state_dict({**schedule.state_dict(), "last_step": loop["step"]})  # base lrs: the caller's
    return meta, loop


def load_classifier(path, device="cpu"):
    """(model in eval mode, vocabulary, tokenizer, label names, config) from a checkpoint."""
    meta, arrays = read(path)
    if "config" not in meta:
        what = {"distillation": "a distillation run's state (minidl.compress.distill out=)",
                "mlm": "a masked-LM run's training state (use the .npz beside it with the mlm commands)"}
        raise CheckpointError(f"{path!r} is {what.get(meta.get('kind'), 'a training state without a model config')}, "
                              f"not a classifier checkpoint of minidl train")
    config = TrainConfig.from_dict(meta["config"])
    vocab = Vocabulary.from_dict(meta["vocab"])
    settings = {**config.model_config(), "embed_dim": int(arrays["model.embedding.weight"].shape[1])}
    model = build_model(config.model, len(vocab), num_classes=len(meta["label_names"]), device=device, **settings)
    model.load_state_dict(model_arrays(arrays))
    model.eval()
    return model, vocab, Tokenizer.from_dict(meta["tokenizer"]), meta["label_names"], config
