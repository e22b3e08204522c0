"""Pictures for students: the autograd graph of a computation, and how gradients flow.

    from minidl.viz import graph, gradient_flow, recurrent_gradient_flow

    graph(loss, model=model).save("graph.svg")      # the ops, the parameters, fused ops as one node
    gradient_flow(model, "grads.png")                # ‖dL/dθ‖ of every parameter, layer by layer
    recurrent_gradient_flow(model, ids, mask, lengths, labels, out_path="bptt.png")   # ‖dL/dh_t‖ against t

Loaded on first use (``md.viz``), never by ``import minidl``: matplotlib is imported only
when a picture is drawn.
"""
from .gradient_flow import gradient_flow, recurrent_gradient_flow
from .graph import FUSED_OPS, Graph, equations, graph

__all__ = ["FUSED_OPS", "Graph", "equations", "gradient_flow", "graph", "recurrent_gradient_flow"]
