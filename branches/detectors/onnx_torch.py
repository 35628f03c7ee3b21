"""The ONNX detector files as torch modules, for GPUs without onnxruntime-gpu.

`convert_onnx` runs the same dynamic-shape graph that `OnnxSession` builds (see
`prepare_dynamic_model`) through onnx2torch. That module reads shape tensors back
to the host in its Slice, Reshape and Resize ops (a sync per call, and no CUDA
graph capture), so `trace_for_shape` traces and freezes it once per input shape:
the shapes become constants and the traced module runs with no host reads.
`max_abs_difference` checks a module against ONNX Runtime on the CPU.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from approxrt.branches.detectors.onnx_graph import (
    load_model,
    prepare_dynamic_model,
    topological_sort,
)
from approxrt.branches.detectors.onnx_session import OnnxSession


def _import_onnx2torch():
    try:
        import onnx2torch
    except ImportError:
        raise ImportError(
            "the torch route for ONNX detectors needs onnx2torch: pip install "
            "'approxrt[gpu]' (or install onnxruntime-gpu for the ONNX Runtime route)"
        ) from None
    return onnx2torch


def _name_nodes(model: onnx.ModelProto) -> None:
    """Give every node a unique name: onnx2torch keys its modules by node name,
    and the nodes added by `make_shapes_dynamic` would otherwise collide."""
    for index, node in enumerate(model.graph.node):
        node.name = f"node{index}_{node.op_type}"


def _annotate_pool_inputs(model: onnx.ModelProto) -> None:
    """Give pooling inputs a rank: onnx2torch picks AvgPool1d/2d/3d from it, and
    the dynamic reshapes before them leave shape inference without one."""
    known = {value.name for value in model.graph.value_info}
    for node in model.graph.node:
        if node.op_type not in ("AveragePool", "MaxPool") or node.input[0] in known:
            continue
        (kernel,) = [a.ints for a in node.attribute if a.name == "kernel_shape"]
        dims = ["n", "c"] + [f"{node.name}_{axis}" for axis in range(len(kernel))]
        model.graph.value_info.append(
            helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, dims)
        )
        known.add(node.input[0])


def make_batch_dynamic(model: onnx.ModelProto) -> int:
    """Let constant Reshape targets follow the input's batch: a leading 1 (the
    export's batch) becomes 0, ONNX's "copy this dimension from the input". The
    leading constant of a target that `make_shapes_dynamic` assembled with
    Concat is changed the same way.

    Returns how many targets changed. Graphs that fold the batch into another
    dimension (FastestDet's channel shuffle) stay batch-1 only.
    """
    constants = {init.name: init for init in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    changed = _resize_batch_from_input(model, constants, producer)
    # The resize step re-sorts the nodes, which copies them: index them anew.
    producer = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        allow_zero = any(a.name == "allowzero" and a.i for a in node.attribute)
        if node.op_type != "Reshape" or allow_zero:
            continue
        # (node holding the target's leading constant, which of its inputs)
        holder, slot = node, 1
        concat = producer.get(node.input[1])
        if concat is not None and concat.op_type == "Concat":
            holder, slot = concat, 0
        if holder.input[slot] not in constants:
            continue
        target = numpy_helper.to_array(constants[holder.input[slot]]).copy()
        if len(target) < 2 or target[0] != 1:
            continue
        target[0] = 0
        name = f"{holder.input[slot]}_approxrt_batch_{changed}"
        model.graph.initializer.append(numpy_helper.from_array(target, name))
        holder.input[slot] = name
        changed += 1
    return changed


def _resize_batch_from_input(model, constants, producer) -> int:
    """Resize ``sizes`` assembled as Concat(constant ``[1, C]``, run-time H, W)
    take their ``[N, C]`` from the resized tensor's own shape instead."""
    added, changed = [], 0
    for node in model.graph.node:
        if node.op_type != "Resize" or len(node.input) < 4:
            continue
        concat = producer.get(node.input[3])
        if concat is None or concat.op_type != "Concat":
            continue
        if concat.input[0] not in constants:
            continue
        prefix = f"{node.input[0]}_approxrt_nc_{changed}"
        indices = f"{prefix}_indices"
        model.graph.initializer.append(
            numpy_helper.from_array(np.asarray([0, 1], np.int64), indices)
        )
        added += [
            helper.make_node("Shape", [node.input[0]], [f"{prefix}_shape"]),
            helper.make_node("Gather", [f"{prefix}_shape", indices], [prefix], axis=0),
        ]
        concat.input[0] = prefix
        changed += 1
    model.graph.node.extend(added)
    topological_sort(model.graph)
    return changed


def convert_onnx(model_path: str | Path) -> torch.nn.Module:
    """The ONNX file at ``model_path`` as an eval-mode torch module (on the CPU).

    Raises:
        ValueError: the file is missing or not a valid ONNX model.
        ImportError: onnx2torch is not installed.
    """
    onnx2torch = _import_onnx2torch()
    model, _ = prepare_dynamic_model(load_model(model_path))
    make_batch_dynamic(model)
    _name_nodes(model)
    _annotate_pool_inputs(model)
    return onnx2torch.convert(model).eval()


@contextlib.contextmanager
def cudnn_tf32(allowed: bool):
    """cuDNN convolutions in TF32 (``allowed``) or full FP32 inside the block.

    torch allows TF32 convolutions by default; a CUDA graph keeps the kernels
    chosen while it was captured, so capturing inside this block fixes the
    precision of every replay.
    """
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def as_list(outputs) -> list[torch.Tensor]:
    """A module's outputs as a list (single-output graphs return a bare tensor)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def trace_for_shape(module: torch.nn.Module, example: torch.Tensor):
    """``module`` traced on ``example`` and frozen: valid for that shape only.

    The tracer warns about every shape read it turns into a constant; that is
    the point here, so those warnings are silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # torch marks jit.trace/freeze deprecated in favour of torch.compile, which
        # fails on onnx2torch's Reshape (a host read of the target shape).
        warnings.simplefilter("ignore", FutureWarning)
        with torch.no_grad():
            traced = torch.jit.trace(module, example, check_trace=False)
            return torch.jit.freeze(traced.eval())


def max_abs_difference(
    module, model_path: str | Path, blob: np.ndarray, device: str = "cpu"
) -> tuple[float, float]:
    """Largest absolute difference between ``module`` and ONNX Runtime on the CPU
    for the ``(1, 3, H, W) float32`` input ``blob`` (run on ``device``), over
    every output.

    Returns:
        ``(max_abs_difference, max_abs_reference)``: the second gives the scale.
    """
    reference = OnnxSession(model_path, device="cpu").run(blob)
    with torch.no_grad():
        outputs = as_list(module(torch.from_numpy(blob).to(device)))
    differences = [
        float(np.abs(out.float().cpu().numpy() - ref).max())
        for out, ref in zip(outputs, reference, strict=True)
    ]
    return max(differences), max(float(np.abs(ref).max()) for ref in reference)
