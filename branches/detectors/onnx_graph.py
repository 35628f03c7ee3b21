"""Reading an exported detector's ONNX graph and freeing it of its export size.

Exported detectors carry the export size in their graph: in the input and output
shapes and, for ShuffleNetV2 backbones, in constant ``Reshape`` targets of the
channel shuffle (``{1, 2, 58, 52, 52}``) and constant ``Resize`` sizes of the FPN.
`prepare_dynamic_model` makes those sizes follow the input's run-time shape, in
memory; `OnnxSession` and the torch route (`onnx_torch`) run the result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read and check an ONNX model file.

    Raises:
        ValueError: the file is missing, not a file, not an ONNX model (random
            bytes, truncated) or fails ``onnx.checker``; the message names the path.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ValueError(f"model file {str(path)!r} {what}; expected an .onnx file")
    if path.stat().st_size == 0:
        raise ValueError(f"model file {str(path)!r} is empty (0 bytes)")
    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, UnicodeDecodeError) as error:
        raise ValueError(
            f"model file {str(path)!r} is not a readable ONNX model (corrupt or "
            f"truncated?): {error}"
        ) from error
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ValueError(
            f"model file {str(path)!r} is not a valid ONNX model: {first_line}"
        ) from error
    return model


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape at the export size, from ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes = {}
    for value in (*inferred.input, *inferred.value_info, *inferred.output):
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


class _ShapeRewriter:
    """Replaces export-size constants in Reshape/Resize shape inputs.

    A Reshape target's consecutive ``(H, W)`` entries become the run-time H, W of
    the nearest 4-D ``(N, C, H, W)`` tensor upstream of it (through Reshape and
    Transpose only, which a channel shuffle is made of), and an ``H * W`` entry
    becomes ``-1``. A Resize's constant ``sizes`` take H, W from the other input
    of the node consuming it (the FPN lateral it is added to). Both give the same
    numbers at the export size, so the rewritten graph is exact there.
    """

    def __init__(self, model: onnx.ModelProto) -> None:
        self.graph = model.graph
        self.shapes = _static_shapes(model)
        self.constants = _constants(model.graph)
        self.producer = {out: node for node in self.graph.node for out in node.output}
        self.added: list[onnx.NodeProto] = []
        self._hw: dict[str, str] = {}

    def _constant(self, values: list[int]) -> str:
        name = f"approxrt_dyn_{len(self.graph.initializer)}"
        self.graph.initializer.append(
            numpy_helper.from_array(np.asarray(values, np.int64), name)
        )
        return name

    def _hw_of(self, tensor: str) -> str:
        """A ``(2,) int64`` tensor holding ``tensor``'s run-time H and W."""
        if tensor not in self._hw:
            shape, hw = f"{tensor}_approxrt_shape", f"{tensor}_approxrt_hw"
            indices = self._constant([2, 3])
            self.added += [
                helper.make_node("Shape", [tensor], [shape]),
                helper.make_node("Gather", [shape, indices], [hw], axis=0),
            ]
            self._hw[tensor] = hw
        return self._hw[tensor]

    def _spatial_source(self, tensor: str) -> str | None:
        while len(self.shapes.get(tensor, ())) != 4:
            node = self.producer.get(tensor)
            if (
                tensor not in self.shapes
                or node is None
                or node.op_type not in ("Reshape", "Transpose")
            ):
                return None
            tensor = node.input[0]
        return tensor

    def _concat(self, pieces: list, out: str) -> str:
        """Concat constant int lists and tensor names into one shape tensor."""
        names = [self._constant(p) if isinstance(p, list) else p for p in pieces if p]
        self.added.append(helper.make_node("Concat", names, [out], axis=0))
        return out

    def reshape(self, node: onnx.NodeProto) -> bool:
        target = self.constants.get(node.input[1])
        source = self._spatial_source(node.input[0])
        if target is None or source is None:
            return False
        height, width = self.shapes[source][2:]
        target = [int(v) for v in target]
        pieces: list = [[]]
        index, changed, has_free = 0, False, -1 in target
        while index < len(target):
            if target[index : index + 2] == [height, width]:
                pieces += [self._hw_of(source), []]
                index, changed = index + 2, True
                continue
            value = target[index]
            if value == height * width and not has_free:
                value, changed, has_free = -1, True, True
            pieces[-1].append(value)
            index += 1
        if changed:
            node.input[1] = self._concat(pieces, f"{node.output[0]}_approxrt_target")
        return changed

    def resize(self, node: onnx.NodeProto) -> bool:
        if len(node.input) < 4 or node.input[3] not in self.constants:
            return False
        sizes = [int(v) for v in self.constants[node.input[3]]]
        users = [n for n in self.graph.node if node.output[0] in n.input]
        others = (
            [name for name in users[0].input if name != node.output[0]]
            if len(users) == 1
            else []
        )
        if len(others) != 1 or self.shapes.get(others[0], ())[2:] != tuple(sizes[2:]):
            return False
        node.input[3] = self._concat(
            [sizes[:2], self._hw_of(others[0])], f"{node.output[0]}_approxrt_sizes"
        )
        return True


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder nodes, as little as possible, so each follows its inputs' producers."""
    ready = {value.name for value in graph.input} | {i.name for i in graph.initializer}
    ready.add("")
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if set(node.input) <= ready:
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ValueError("graph rewrite left a cycle or a dangling input")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def make_shapes_dynamic(model: onnx.ModelProto) -> int:
    """Rewrite, in place, shape constants that bake in the export size.

    Returns:
        How many Reshape/Resize nodes were rewritten (0 for a fully
        convolutional export such as YOLOX).
    """
    rewriter = _ShapeRewriter(model)
    count = 0
    for node in list(model.graph.node):
        if node.op_type == "Reshape":
            count += rewriter.reshape(node)
        elif node.op_type == "Resize":
            count += rewriter.resize(node)
    model.graph.node.extend(rewriter.added)
    topological_sort(model.graph)
    used = {name for node in model.graph.node for name in node.input}
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return count


def image_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The first graph input that is not a weight (old exports list weights too)."""
    weights = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        raise ValueError(
            f"expected one (1, 3, H, W) image input, got {[i.name for i in inputs]}"
        )
    return inputs[0]


def _symbolic(value: onnx.ValueInfoProto, axes: range, prefix: str) -> None:
    dims = value.type.tensor_type.shape.dim
    for axis in axes:
        dims[axis].Clear()
        dims[axis].dim_param = f"{prefix}_{axis}"


def prepare_dynamic_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` that runs at any input height and width.

    Drops weights listed as graph inputs (so ONNX Runtime may constant-fold them),
    rewrites size-baked ``Reshape``/``Resize`` shapes (see `make_shapes_dynamic`),
    makes the input's H, W and every output dim but the batch symbolic, and drops
    stale intermediate shape annotations.

    Returns:
        The new model and how many nodes had their shapes rewritten.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {init.name for init in model.graph.initializer}
    kept = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    rewritten = make_shapes_dynamic(model)
    _symbolic(image_input(model), range(2, 4), "input")
    for output in model.graph.output:
        _symbolic(
            output,
            range(1, len(output.type.tensor_type.shape.dim)),
            output.name.replace(".", "_"),
        )
    del model.graph.value_info[:]
    return model, rewritten
