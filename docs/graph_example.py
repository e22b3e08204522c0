"""Draws the autograd graph of the README's "A first look" example: docs/graph_example.svg and .png.

    .venv/bin/python docs/graph_example.py

Both computations of the example in one picture: y = (x.tanh() * x).sum() on top, the small
classifier's cross-entropy below (its parameters named as ``model.named_parameters()`` says,
``linear`` and ``cross_entropy`` each one fused node). ``gradients="all"`` gives every node its
dL/d(node), not only the leaves' ``.grad``. The optimizer step and ``model.save`` of the README
are left out: they change no graph. The built-in layout is used, so the files are the same with
or without Graphviz installed.
"""
import os

import minidl as md
from minidl import nn
from minidl.viz import graph

md.manual_seed(0)
x = md.tensor([[1.0, -2.0, 3.0]], requires_grad=True)   # float32 on the NumPy backend
y = (x.tanh() * x).sum()
y.backward()
x.grad                                                    # a NumPy array: d y / d x

model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
loss = md.cross_entropy(model(md.randn(8, 2)), md.tensor([0, 1] * 4))
loss.backward()

picture = graph([y, loss], model=model, names={"x": x, "y": y, "loss": loss}, gradients="all")
here = os.path.dirname(os.path.abspath(__file__))
for ext in ("svg", "png"):
    print("wrote", picture.save(os.path.join(here, f"graph_example.{ext}"), engine="builtin"))
