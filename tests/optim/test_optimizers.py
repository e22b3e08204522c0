"""SGD, Adam and AdamW against torch.optim: same float64 parameters, same gradients, a few
steps, agreement to 1e-10; plus resuming from state_dict and the rules every optimizer keeps
(skip parameters without a gradient, never modify a gradient in place)."""
import numpy as np
import pytest
import torch

import minidl as md
from minidl import nn, optim

SHAPES = [(3, 4), (4,), (2, 2, 3)]
STEPS = 5

CONFIGS = {
    "sgd": (optim.SGD, torch.optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    "sgd_nesterov": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    "sgd_weight_decay": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.8, weight_decay=0.05)),
    "adam": (optim.Adam, torch.optim.Adam, dict(lr=0.01)),
    "adam_weight_decay": (optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6,
                                                               weight_decay=0.1)),
    "adamw": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
}


def make_params(rng, device):
    values = [rng.standard_normal(shape) for shape in SHAPES]
    ours = [nn.Parameter(v, device=device, dtype="float64") for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    return ours, theirs


def set_grads(ours, theirs, rng, step):
    for i, (p, q) in enumerate(zip(ours, theirs)):
        if i == 1 and step == 2:  # a parameter unused in one step: both libraries skip it
            p.grad, q.grad = None, None
            continue
        g = rng.standard_normal(p.shape)
        p.grad = p.xp.asarray(g, "float64")
        q.grad = torch.tensor(g)


def assert_same(ours, theirs):
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", CONFIGS)
def test_matches_torch_optim(device, rng, name):
    ours_cls, torch_cls, hyper = CONFIGS[name]
    ours, theirs = make_params(rng, device)
    opt, reference = ours_cls(ours, **hyper), torch_cls(theirs, **hyper)
    for step in range(STEPS):
        set_grads(ours, theirs, rng, step)
        opt.step()
        reference.step()
        assert_same(ours, theirs)


@pytest.mark.parametrize("name", ["sgd_momentum", "adamw"])
def test_parameter_groups_match_torch_optim(rng, name):
    ours_cls, torch_cls, hyper = CONFIGS[name]
    ours, theirs = make_params(rng, "cpu")
    no_decay = dict(lr=0.05, weight_decay=0.0)  # e.g. biases and LayerNorm gains
    opt = ours_cls([{"params": ours[:2]}, {"params": ours[2:], **no_decay}], **hyper)
    reference = torch_cls([{"params": theirs[:2]}, {"params": theirs[2:], **no_decay}], **hyper)
    for step in range(STEPS):
        set_grads(ours, theirs, rng, step)
        opt.step()
        reference.step()
        assert_same(ours, theirs)


def test_a_group_takes_one_tensor_as_its_params_and_a_group_without_params_is_refused():
    """torch takes {"params": w}; list(w) made a group of w's rows (tensors made by an op, refused)."""
    layer = nn.Linear(3, 2)
    opt = optim.SGD([{"params": layer.weight, "lr": 0.1}, {"params": [layer.bias]}], lr=0.01)
    (weight,), (bias,) = (group["params"] for group in opt.param_groups)
    assert weight is layer.weight and bias is layer.bias
    with pytest.raises(ValueError, match=r"a parameter group needs its parameters.*got only \['lr'\]"):
        optim.SGD([{"lr": 0.1}], lr=0.01)   # was a bare KeyError: 'params'


@pytest.mark.parametrize("name", ["sgd_weight_decay", "sgd_nesterov", "adam_weight_decay", "adamw"])
def test_gradients_are_never_modified(rng, name):
    ours_cls, _, hyper = CONFIGS[name]
    a, b = nn.Parameter(rng.standard_normal(3)), nn.Parameter(rng.standard_normal(3))
    shared = rng.standard_normal(3).astype(np.float32)
    expected = shared.copy()
    opt = ours_cls([a, b], **hyper)
    for _ in range(3):
        a.grad = b.grad = shared  # the engine may hand one array to two tensors
        opt.step()
    assert np.array_equal(shared, expected)


@pytest.mark.parametrize("name", ["sgd_momentum", "adamw"])
def test_resume_from_state_dict_continues_identically(rng, name):
    ours_cls, _, hyper = CONFIGS[name]
    run, _ = make_params(rng, "cpu")
    opt = ours_cls(run, **hyper)
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(6)]

    def step(params, optimizer, k):
        for p, g in zip(params, grads[k]):
            p.grad = p.xp.asarray(g, "float64")
        optimizer.step()

    for k in range(3):
        step(run, opt, k)
    saved = opt.state_dict()
    # a fresh process: the weights come back from the checkpoint, the optimizer from `saved`,
    # here onto the torch backend to show the moments follow the parameters' device
    resumed = [nn.Parameter(p.numpy(), device="torch", dtype="float64") for p in run]
    opt_resumed = ours_cls(resumed, **{**hyper, "lr": 123.0})  # lr is restored too
    opt_resumed.load_state_dict(saved)
    for k in range(3, 6):
        step(run, opt, k)
        step(resumed, opt_resumed, k)
    for p, q in zip(run, resumed):
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=0, atol=1e-12)


def test_state_dict_layout():
    params = [nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))]
    opt = optim.Adam(params, lr=0.1)
    params[1].grad = np.ones(3, dtype=np.float32)
    opt.step()
    state = opt.state_dict()
    assert list(state["state"]) == [1] and state["state"][1]["step"] == 1
    assert isinstance(state["state"][1]["exp_avg"], np.ndarray)
    assert state["param_groups"] == [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                                      "params": [0, 1]}]
    with pytest.raises(md.MinidlError, match="groups of sizes"):
        optim.Adam(params[:1]).load_state_dict(state)


def test_zero_grad_and_frozen_parameters():
    model = nn.Sequential(nn.Embedding(4, 2, freeze=True), nn.Linear(2, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    frozen = model[0].weight.numpy().copy()
    model(np.array([[1, 2]])).sum().backward()
    opt.step()
    assert np.array_equal(model[0].weight.numpy(), frozen), "no gradient, no update"
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_numpy_numbers_and_torch_s_zero_grad_options_are_taken_and_strings_refused():
    """lr=np.float32(0.01) was refused as not a number, weight_decay="0.1" was a TypeError ('<' not supported),
    zero_grad(set_to_none=False), torch's, a TypeError."""
    params = [nn.Parameter(np.ones(2))]
    assert optim.Adam(params, lr=np.float32(0.01), weight_decay=np.float64(0.1)).param_groups[0]["lr"] == 0.01
    for bad in ("0.1", float("inf"), -1.0):
        with pytest.raises(ValueError, match="weight_decay must be a number >= 0, got"):
            optim.AdamW(params, weight_decay=bad)
    opt = optim.SGD(params, lr=0.1)
    params[0].grad = np.ones(2)
    opt.zero_grad(set_to_none=False)
    assert params[0].grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert params[0].grad is None


def test_a_model_moved_after_a_step_keeps_a_working_optimizer():
    """model.to("torch") after a step: state_dict() (every checkpoint) raised AttributeError on the NumPy moments,
    and swap_average() put NumPy weights into torch parameters."""
    model = nn.Linear(3, 2, dtype="float64")
    opt = optim.Adam(model.parameters(), lr=0.1, average=0.5)
    x = md.tensor(np.ones((4, 3)))
    model(x).sum().backward()
    opt.step()
    saved = opt.state_dict()
    model.to("torch")
    moved = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for s in moved["state"].values() for k, v in s.items() if k != "step")
    assert all(np.array_equal(moved["state"][i][k], saved["state"][i][k]) for i in saved["state"]
               for k in ("exp_avg", "exp_avg_sq", "average"))
    weights = [p.numpy().copy() for p in model.parameters()]
    assert opt.swap_average()
    assert all(p.xp.name == "torch" for p in model.parameters())
    assert all(np.array_equal(p.numpy(), saved["state"][i]["average"]) for i, p in enumerate(model.parameters()))
    opt.swap_average()
    assert all(np.array_equal(p.numpy(), w) for p, w in zip(model.parameters(), weights))


def test_bad_hyperparameters_are_refused():
    params = [nn.Parameter(np.ones(2))]
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(params, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(params, betas=(0.9, 1.0))
    for betas in ((0.9,), (0.9, 0.99, 0.999), ("a", "b"), 0.9):   # a step's unpacking or comparison failed
        with pytest.raises(ValueError, match=r"betas must be two numbers \(beta1, beta2\) in \[0, 1\)"):
            optim.Adam(params, betas=betas)
    with pytest.raises(ValueError, match="no parameters"):
        optim.AdamW([])
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([{"params": params}, {"params": params}], lr=0.1)
    with pytest.raises(ValueError, match="eps must be >= 0, got -1"):       # (these two ran in no test: coverage)
        optim.Adam(params, eps=-1)
    with pytest.raises(TypeError, match="SGD optimizes Tensors, got ndarray"):
        optim.SGD([np.ones(2)], lr=0.1)


def test_a_saved_state_of_other_shapes_is_refused_and_an_optimizer_prints_its_groups():
    opt = optim.Adam([nn.Parameter(np.ones(2))], lr=0.1)
    opt.param_groups[0]["params"][0].grad = np.ones(2)
    opt.step()
    saved = opt.state_dict()
    saved["state"][0]["exp_avg"] = np.zeros(3)
    with pytest.raises(md.MinidlError, match=r"state 'exp_avg' of parameter 0 has shape \(3,\), the parameter has "
                                             r"\(2,\)"):
        optim.Adam([nn.Parameter(np.ones(2))]).load_state_dict(saved)
    assert repr(opt).splitlines() == ["Adam(", "  group 0: 1 parameters, lr=0.1, betas=(0.9, 0.999), eps=1e-08, "
                                               "weight_decay=0.0", ")"]


def test_a_saved_state_of_another_optimizer_is_refused_and_an_older_one_without_the_class_loads():
    adam = optim.Adam([nn.Parameter(np.ones(2))], lr=0.5)
    saved = adam.state_dict()
    assert saved["optimizer"] == "Adam"
    sgd = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(md.MinidlError, match=r"^SGD.load_state_dict: the state was saved by Adam, this is SGD; "
                                             r"load it into Adam\(...\) over the same parameters$"):
        sgd.load_state_dict(saved)                 # took Adam's lr, betas and eps, silently
    assert sgd.param_groups[0]["lr"] == 0.1 and "betas" not in sgd.param_groups[0]
    with pytest.raises(md.MinidlError, match="saved by Adam, this is AdamW"):
        optim.AdamW([nn.Parameter(np.ones(2))]).load_state_dict(saved)
    del saved["optimizer"]                          # a state saved before the class was recorded
    again = optim.Adam([nn.Parameter(np.ones(2))], lr=0.1)
    again.load_state_dict(saved)
    assert again.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("name", ["sgd_momentum", "adamw"])
def test_weight_average_matches_torch_swa_utils_and_swaps_back_exactly(device, rng, name):
    """``average``: after every step, the running average of torch's AveragedModel with its EMA rule (a copy at
    the first step, then decay · average + (1 − decay) · weights); swap_average twice restores the weights bit for
    bit; the average travels in state_dict, so a resumed optimizer keeps averaging where it left off."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ours_cls, torch_cls, hyper = CONFIGS[name]
    ours, theirs = make_params(rng, device)
    opt, reference = ours_cls(ours, **hyper, average=0.9), torch_cls(theirs, **hyper)
    module = torch.nn.ParameterList(theirs)
    averaged = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    assert opt.swap_average() is False, "nothing to swap before the first step"
    for step in range(STEPS):
        for p, q in zip(ours, theirs):
            g = rng.standard_normal(p.shape)
            p.grad, q.grad = p.xp.asarray(g, "float64"), torch.tensor(g)
        opt.step()
        reference.step()
        averaged.update_parameters(module)
        trained = [p.numpy().copy() for p in ours]
        assert opt.swap_average() is True
        assert_same(ours, list(averaged.module.parameters()))
        opt.swap_average()
        for p, before in zip(ours, trained):
            np.testing.assert_array_equal(p.numpy(), before)
        assert_same(ours, theirs)
    saved = opt.state_dict()
    assert all("average" in state for state in saved["state"].values())
    again = ours_cls([nn.Parameter(p.numpy(), device=device, dtype="float64") for p in ours], **hyper, average=0.9)
    again.load_state_dict(saved)
    again.swap_average()
    assert_same(again.param_groups[0]["params"], list(averaged.module.parameters()))


def test_a_bad_weight_average_is_refused():
    with pytest.raises(ValueError, match=r"average must lie in \[0, 1\), got 1.0"):
        optim.Adam([nn.Parameter(np.ones(2))], average=1.0)
