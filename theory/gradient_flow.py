"""How the gradient's size changes from layer to layer in a deep MLP, with and without skips.

    python -m theory.gradient_flow --out theory/gradient_flow.png

The network (B = batch, E = width, L = depth):

    h_0 = x                                   x: (B, E), entries N(0, 1)
    plain:    h_k = φ(h_{k-1} W_k)            W_k: (E, E), entries N(0, s²/E), no bias
    residual: h_k = h_{k-1} + φ(h_{k-1} W_k)
    loss = Σ_b h_L[b] · r / B                 r: (E,), entries N(0, 1/E)

with s = 1 (LeCun's rule, the same for every activation) or, in the third panel of
the figure, residual branches scaled by s = 1/√L (the rule GPT-2 uses for the
projections that feed its residual stream). The loss is linear in the top layer so
that dL/dh_L is the same for every activation; what happens below it is the chain
rule alone. All random numbers come from a NumPy generator seeded with ``seed``, so
the "cpu" and "torch" devices build the same network. Every gradient is computed by
minidl's engine (``retain_grad()`` on each h_k, then ``backward()``).

The figure plots ``||dL/dh_k|| / ||dL/dh_L||`` against the layer k (geometric mean
over seeds), one line per activation, one panel per network, log scale.
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np

import minidl as md
from minidl.backend import get_backend
from minidl.command import ArgumentParser, run
from minidl.io import WriteError, check_replaceable, check_writable, is_minidl_figure, write_figure

ACTIVATIONS = {
    "sigmoid": md.sigmoid,
    "tanh": md.tanh,
    "relu": md.relu,
    "leaky_relu": md.leaky_relu,  # slope 0.01 for negative inputs (minidl's default)
}
COLORS = {"sigmoid": "tab:red", "tanh": "tab:orange", "relu": "tab:blue", "leaky_relu": "tab:green"}


def gradient_norms(activation, depth=50, skip=False, width=64, seed=0, device="cpu", batch=32,
                   branch_scale=1.0):
    """``[||dL/dh_0||, ||dL/dh_1||, …, ||dL/dh_depth||]`` (Frobenius norms over the batch).

    ``h_0`` is the input; index k is the output of layer k. See the module docstring
    for the network, the initialisation and the loss. ``branch_scale`` multiplies every
    W_k (use ``1/sqrt(depth)`` with ``skip=True`` for the scaled residual network).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if depth < 1 or width < 1 or batch < 1:
        raise ValueError(f"depth, width and batch must be positive, got {depth}, {width}, {batch}")
    phi = ACTIVATIONS[activation]
    rng = np.random.default_rng(seed)

    def constant(array):
        return md.tensor(array, device=device, dtype="float64")

    h = md.tensor(rng.standard_normal((batch, width)), requires_grad=True, device=device, dtype="float64")
    layers = [h]
    for _ in range(depth):
        W = constant(rng.standard_normal((width, width)) * (branch_scale / math.sqrt(width)))
        branch = phi(h @ W)
        h = h + branch if skip else branch
        layers.append(h.retain_grad())
    readout = constant(rng.standard_normal(width) / math.sqrt(width))
    loss = (h @ readout).sum() / batch
    loss.backward()
    return [float(np.linalg.norm(t.xp.to_numpy(t.grad))) for t in layers]


def relative_profile(activation, depth, skip, width, seeds, device="cpu", branch_scale=1.0):
    """``||dL/dh_k|| / ||dL/dh_depth||`` for k = 0..depth, geometric mean over ``seeds``."""
    logs = [np.log(np.array(gradient_norms(activation, depth, skip, width, seed, device,
                                           branch_scale=branch_scale)))
            for seed in seeds]
    return np.exp(np.mean([lg - lg[-1] for lg in logs], axis=0))


def networks(depth):
    """The three panels: (name, title, skip, branch_scale)."""
    return [("plain", r"plain: $h_k = \varphi(h_{k-1} W_k)$", False, 1.0),
            ("residual", r"residual: $h_k = h_{k-1} + \varphi(h_{k-1} W_k)$", True, 1.0),
            (f"residual, W_k scaled by 1/sqrt({depth})", rf"residual, $W_k$ scaled by $1/\sqrt{{{depth}}}$",
             True, 1.0 / math.sqrt(depth))]


def plot(profiles, depth, width, n_seeds, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "minidl"  # fixed element ids: redrawing gives the same SVG

    panels = networks(depth)
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.8), sharey=True)
    layers = np.arange(depth + 1)
    for ax, (network, title, _, _) in zip(axes, panels):
        for name in ACTIVATIONS:
            # leaky ReLU is dashed: with slope 0.01 its curve lies on top of ReLU's
            ax.semilogy(layers, profiles[network][name], color=COLORS[name], lw=2,
                        ls="--" if name == "leaky_relu" else "-", label=name)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_title(title)
        ax.set_xlabel("layer k  (0 = input; the gradient flows right to left)")
        ax.set_xlim(0, depth)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(r"$\|\partial L/\partial h_k\| \,/\, \|\partial L/\partial h_{top}\|$")
    axes[0].legend(loc="lower right")
    fig.suptitle(f"Gradient norm per layer: MLP of width {width}, depth {depth}, "
                 f"$W_k \\sim N(0, 1/{width})$ unless scaled, geometric mean over {n_seeds} seeds")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    svg = os.path.splitext(out)[0] + ".svg"
    for path in (out, svg):
        write_figure(fig, path, dpi=100)
    plt.close(fig)
    return svg


def main(argv=None):
    parser = ArgumentParser(prog="python -m theory.gradient_flow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="theory/gradient_flow.png", help="PNG to write (an SVG goes next to it)")
    parser.add_argument("--depth", type=int, default=50, help="layers L, at least 2")
    parser.add_argument("--width", type=int, default=64, help="units per layer E")
    parser.add_argument("--seeds", type=int, default=5, help="average over seeds 0..N-1")
    parser.add_argument("--device", default="cpu", help='"cpu" (NumPy), "torch" or "cuda"')
    parser.add_argument("--debug", action="store_true", help="on an error, show the Python traceback too")
    parser.set_defaults(prog=parser.prog, run=_figure)
    args = parser.parse_args(argv)
    if args.depth < 2 or args.width < 1 or args.seeds < 1:
        parser.error(f"--depth {args.depth}, --width {args.width}, --seeds {args.seeds}: give --depth >= 2, "
                     f"--width >= 1 and --seeds >= 1")
    if not args.out.lower().endswith(".png"):
        parser.error(f"--out {args.out}: give a .png file (the .svg goes next to it)")
    try:   # an unknown device, or a GPU not there, was a traceback at the first tensor
        get_backend(args.device)
    except (RuntimeError, ValueError) as e:
        parser.error(f"--device: {e}")
    svg = os.path.splitext(args.out)[0] + ".svg"
    try:   # before the work: a figure of the user's at either path is never replaced, and the folder can be made
        check_writable(args.out)   # (below a file, or in /proc: a traceback after all the work)
        check_replaceable(args.out, is_minidl_figure, "theory.gradient_flow", beside=(svg,))
    except WriteError as e:
        parser.exit(2, f"{parser.prog}: {e}\n")

    return run(args)   # out of memory or Ctrl-C: one line, as minidl's commands answer


def _figure(args):
    """The profiles (with a progress bar on stderr: a long run showed nothing until the tables), the tables and
    the figure; exit code 0."""
    from tqdm import tqdm

    jobs = [(network, skip, scale, name) for network, _, skip, scale in networks(args.depth) for name in ACTIVATIONS]
    profiles = {network: {} for network, *_ in jobs}
    for network, skip, scale, name in tqdm(jobs, desc="profiles", unit="profile", leave=False, dynamic_ncols=True):
        profiles[network][name] = relative_profile(name, args.depth, skip, args.width, range(args.seeds),
                                                   args.device, scale)
    marks = sorted({0, args.depth // 2, max(args.depth - 10, 0), args.depth - 1})   # depth - 10 < 0 wrapped round
    print(f"||dL/dh_k|| / ||dL/dh_{args.depth}||, geometric mean over {args.seeds} seeds")
    for network, by_activation in profiles.items():
        print(f"\n{network}\n{'':<12}" + "".join(f"{'k=' + str(k):>11}" for k in marks))
        for name, profile in by_activation.items():
            print(f"{name:<12}" + "".join(f"{profile[k]:>11.2e}" for k in marks))
    svg = plot(profiles, args.depth, args.width, args.seeds, args.out)
    print(f"\nwrote {args.out} and {svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
