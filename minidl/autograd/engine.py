"""Reverse-mode differentiation over the graph of ``Function`` nodes.

``backward(root)`` walks the graph once in reverse topological order (found with an
explicit stack, so a 10,000-op chain needs no recursion), calls each node's
hand-written ``backward`` and accumulates gradients into the leaves' ``.grad``
(and into any tensor that called ``retain_grad()``).

Calling ``backward`` twice is allowed: the graph is kept (its saved arrays live as
long as the output tensor does) and the second call *adds* the same gradients to
the leaves again, as ``torch`` does with ``retain_graph=True``. Zero the gradients
(``optimizer.zero_grad()``) between steps. Once an optimizer step has changed an
input of an op in place, a backward through that op is refused: its saved arrays may
hold the old values. (torch refuses only where the backward needs the changed input;
minidl checks every input, which is simpler and refuses a little more.)

Gradient arrays are never modified in place: an op may hand the same array to two
inputs (``add`` does), so accumulation always builds a new array.
"""
from __future__ import annotations

import contextlib
import os
import traceback

from ..errors import OpError
from .broadcast import unbroadcast

_grad_enabled = True
_anomaly = False
_clock = 0   # the number of in-place changes so far (``changed_in_place``): each op records the count it saw


def is_grad_enabled():
    return _grad_enabled


@contextlib.contextmanager
def _set_grad_enabled(mode):
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, mode
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad(function=None):
    """Context manager (or decorator, ``@no_grad()`` or, as torch allows, ``@no_grad``) that stops
    recording the graph: for evaluation."""
    return _set_grad_enabled(False) if function is None else _set_grad_enabled(False)(function)


def enable_grad():
    return _set_grad_enabled(True)


def changed_in_place(tensor):
    """Note that ``tensor``'s array was just changed in place (an optimizer's step, ``p -= lr * p.grad``):
    a graph recorded before it can no longer run backward through it."""
    global _clock
    _clock += 1
    tensor._changed_at = _clock


def _check_unchanged(ctx):
    """Refuse the backward of an op one of whose inputs an optimizer changed after the op was recorded."""
    for parent in ctx.parents:
        if parent is not None and parent._changed_at > ctx.clock:
            raise RuntimeError(
                f"backward(): an input of shape {parent.shape} of '{ctx.fn.op_name()}' was changed in place "
                f"(optimizer.step(), or p -= ... under no_grad) after the graph was recorded, and the op's "
                f"backward may use its old values; run the forward again after each step, and .detach() a "
                f"state carried into the next batch")


def anomaly_mode():
    return _anomaly


@contextlib.contextmanager
def detect_anomaly():
    """Check every gradient for NaN/Inf during backward and name the op that made it.

    Ops recorded inside the block also remember the line of user code that created
    them, which the error message quotes. Slower: use it to debug, not to train.
    """
    global _anomaly
    previous, _anomaly = _anomaly, True
    try:
        yield
    finally:
        _anomaly = previous


def user_frame():
    """'file:line in function' of the innermost stack frame outside minidl's engine."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(here):
            return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return "<unknown>"


def topological_order(root):
    """Every tensor that ``root`` depends on and that requires grad, inputs before outputs."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.parents:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _root_gradient(root, grad):
    """dL/d(root) as an array of the root's shape, after checking ``backward``'s arguments.

    ``grad`` may be omitted (None) when ``root`` holds a single value: dL/d(root) = 1.
    """
    xp = root.xp
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: no input of the computation "
            "had requires_grad=True (or it ran inside no_grad())")
    if grad is None:
        if xp.size(root.data) != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a single-value output, got shape "
                f"{root.shape}; call .sum() first or pass grad=")
        return xp.ones_like(root.data)
    if hasattr(grad, "_ctx") and grad.xp is not xp:
        raise ValueError(f"backward(): grad lives on {grad.device}, the output on {root.device}; move it with "
                         f".to({root.device!r})")
    grad = grad.data if hasattr(grad, "_ctx") else xp.asarray(grad, root.dtype)
    if tuple(grad.shape) != root.shape:
        raise ValueError(f"backward(): grad has shape {tuple(grad.shape)}, output has {root.shape}")
    return grad


def _check_finite(ctx, i, parent, g_in):
    """detect_anomaly(): raise, naming the op, if the gradient of its input ``i`` is not finite."""
    if not parent.xp.all_finite(g_in):
        where = getattr(ctx, "created_at", "<recorded outside detect_anomaly()>")
        raise FloatingPointError(
            f"anomaly: the backward of '{ctx.fn.op_name()}' produced NaN or Inf in the "
            f"gradient of its input {i} (shape {parent.shape}); the op was "
            f"created at {where}")


_Tensor = None   # the Tensor class, handed over by tensor.py (which imports this module)


def _keep(node, g, given):
    """Store ``g`` as the gradient of a leaf (or a retained node): added to the one it has, else as its own writable
    array (one backward's array, add's (grad, grad), is never two leaves' .grad: p.grad *= 0.5 on one scaled both;
    sum's read-only broadcast view and the caller's backward(grad) are copied: p.grad *= 0.5 failed or changed it)."""
    if isinstance(g, _Tensor):     # an optimizer would then update nothing
        raise OpError(f"the gradient of a tensor of shape {node.shape} is a minidl Tensor, not an array: a "
                      f"Function.backward returned Tensors; return arrays (a Tensor's .data)")
    if node.grad is not None:
        node.grad = node.grad + g
    else:
        node.grad = g if id(g) not in given and node.xp.owns(g) else node.xp.copy(g)
        given.add(id(node.grad))


def _summed_back(ctx, i, grad, parent):
    """``grad`` summed back to the shape of input ``i``, ``parent``, where it can be: the input broadcast to it, or
    it is the input's shape but for axes of size 1. (Any other shape, even of the same size, is a bug: an OpError.)"""
    grad_shape, shape = tuple(grad.shape), parent.shape
    broadcast = len(shape) <= len(grad_shape) and all(n in (1, m) for n, m in zip(shape[::-1], grad_shape[::-1]))
    if not broadcast and [n for n in grad_shape if n != 1] != [n for n in shape if n != 1]:
        raise OpError(f"{ctx.fn.op_name()}.backward returned a gradient of shape {grad_shape} for input {i} of "
                      f"shape {shape}; return one of the input's shape (or of the shape it was broadcast to)")
    return unbroadcast(parent.xp, grad, shape)


def _not_an_array(ctx, i, g_in, parent):
    """The error for a backward that gave a number or a list as an input's gradient (it failed on .shape)."""
    return OpError(f"{ctx.fn.op_name()}.backward returned a {type(g_in).__name__} for input {i}, not an array; return "
                   f"an array of the input's shape {parent.shape} made from grad (e.g. grad * 2 for a derivative of 2)")


def _wrong_gradients(ctx, input_grads):
    """Refuse a backward that returned gradients past its forward's inputs (Nones, for settings
    passed by name, are fine), or none for a Tensor input that needs one (zip would drop it, and
    that input would get no gradient)."""
    missing = [i for i, p in enumerate(ctx.parents) if i >= len(input_grads) and p is not None and p.requires_grad]
    if missing or any(g is not None for g in input_grads[len(ctx.parents):]):
        raise OpError(f"{ctx.fn.op_name()}.backward returned {len(input_grads)} gradient(s) for {len(ctx.parents)} "
                      f"inputs; return one per input of forward, None for one that needs none")


def backward(root, grad=None):
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    ``grad`` is dL/d(root); it may be omitted when ``root`` holds a single value.
    """
    grads = {id(root): _root_gradient(root, grad)}
    given = {id(grads[id(root)])}   # the arrays handed to leaves so far, and the root's (maybe the caller's ``grad``)
    # The hot loop: one iteration per node, kept free of extra function calls (the anomaly
    # check costs one only while detect_anomaly() is on).
    for node in reversed(topological_order(root)):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        ctx = node._ctx
        if ctx is None or node._retains_grad:
            _keep(node, g, given)
        if ctx is None:
            continue
        if ctx.clock != _clock:   # an optimizer step since the op was recorded
            _check_unchanged(ctx)
        input_grads = ctx.fn.backward(ctx, g)
        if not isinstance(input_grads, tuple):   # a list is one gradient per input too (it read as one gradient)
            input_grads = tuple(input_grads) if isinstance(input_grads, list) else (input_grads,)
        if len(input_grads) != len(ctx.parents):
            _wrong_gradients(ctx, input_grads)
        for i, (parent, g_in) in enumerate(zip(ctx.parents, input_grads)):
            if parent is None or g_in is None or not parent.requires_grad:
                continue
            try:
                shape = tuple(g_in.shape)
            except AttributeError:   # a Python number, or a list: it failed here, naming no op
                raise _not_an_array(ctx, i, g_in, parent) from None
            if shape != parent.shape:
                g_in = _summed_back(ctx, i, g_in, parent)
            if g_in.dtype is not parent.data.dtype and not isinstance(g_in, _Tensor):   # (named below)
                g_in = parent.xp.astype(g_in, parent.xp.dtype_name(parent.data))   # NumPy: f32 · int64 -> f64
            if _anomaly:
                _check_finite(ctx, i, parent, g_in)
            key = id(parent)
            grads[key] = g_in if key not in grads else grads[key] + g_in
