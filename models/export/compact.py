"""``int8-compact``: weight-only int8 of every weight, one shared graph for all ensemble members.

Dynamic int8 (:func:`~models.export.onnx.quantize_int8_dynamic`) leaves about a third of a
small transformer's file in fp32: biases, LayerNorm scales, position embeddings, per-channel
scales and zero points, and five nodes per quantised ``MatMul`` (``DynamicQuantizeLinear``,
``MatMulInteger``, ``Cast``, two ``Mul``), all repeated once per seed-ensemble member. Here:

* every float weight with more than one element is stored as int8 with one fp32 scale per
  tensor (symmetric, full ``[-127, 127]`` range); a member's int8 weights travel as one
  flattened blob and its scales as one vector (two initializers instead of two per weight),
  turned back into fp32 weights by ``Cast``, ``Split``, ``Mul`` and ``Reshape`` nodes that
  onnxruntime constant-folds when it loads the model: compute stays fp32, so there is no
  activation quantisation error and no int8-kernel saturation, and the latency is that of
  the fp32 model;
* the network of one member is exported once, simplified by onnxruntime's basic
  (hardware-independent) graph optimisations, and stored as an ONNX model-local function;
  the main graph calls it once per member with that member's weights and averages, so the
  nodes (and shape constants) are stored once instead of once per member;
* node names are dropped and tensor names are one to three characters.

onnxruntime inlines the function when it loads the model; every op is a standard ONNX op.

:func:`export_packed` stores the weights of the same graph in a precision per weight
(blockwise 4-bit or 8-bit codes with fp16 scales, fp16, fp32; :mod:`models.export._blockwise`):
the ``int4`` and ``mixed`` variants.
"""

from __future__ import annotations

import copy
import itertools
import string
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper

from core.errors import ModelError
from models.export._blockwise import PRECISIONS, Group, encode_group, unpack_nodes
from models.export.onnx import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx

__all__ = ["FUNCTION_DOMAIN", "export_int8_compact", "export_packed"]

#: Domain of the model-local member function (any name works; onnxruntime inlines it).
FUNCTION_DOMAIN = "genedge"
_ALPHABET = string.ascii_letters + string.digits


def _short(i: int) -> str:
    """``a``, ``b``, ..., ``Z9``: the shortest names, leading letter."""
    name = _ALPHABET[i % 52]
    i //= 52
    while i:
        name += _ALPHABET[i % 62]
        i //= 62
    return name


def _names(reserved: set[str]) -> Iterator[str]:
    """Fresh short names, skipping ``reserved`` (the graph's input and output names)."""
    for i in itertools.count():
        if _short(i) not in reserved:
            yield _short(i)


def _rename_locals(nodes: list[onnx.NodeProto], inputs: list[str], keep: set[str]) -> list[str]:
    """Shorten the tensor names of a function body in place; returns the renamed ``inputs``."""
    fresh = _names(keep)
    mapping: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = next(fresh)
        return mapping[name]

    renamed = [short(n) for n in inputs]
    for node in nodes:
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    return renamed


def _members(net: torch.nn.Module) -> list[torch.nn.Module]:
    members = getattr(net, "members", None)
    return list(members) if isinstance(members, torch.nn.ModuleList) else [net]


def _randomised(member: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A copy with distinct random values in every parameter and buffer, so the exporter keeps
    one initializer per parameter (it merges equal ones, e.g. untrained LayerNorm scales) and
    each initializer can be traced back to its parameter by value."""
    template = copy.deepcopy(member).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*template.parameters(), *template.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype))
    return template


def _trace_initializers(graph: onnx.GraphProto, template: torch.nn.Module) -> dict[str, tuple[str, bool]]:
    """Initializer name -> (state-dict key, transposed) for each float initializer holding a
    parameter of ``template`` (as is, or transposed as the exporter stores ``Linear`` weights)."""
    state = {k: v.detach().cpu().numpy() for k, v in template.state_dict().items() if v.is_floating_point()}
    traced: dict[str, tuple[str, bool]] = {}
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        for key, value in state.items():
            if value.shape == arr.shape and np.array_equal(value, arr):
                traced[init.name] = (key, False)
                break
            if value.ndim == 2 and value.T.shape == arr.shape and np.array_equal(value.T, arr):
                traced[init.name] = (key, True)
                break
    return traced


def _ort_basic(path: Path) -> onnx.ModelProto:
    """The graph after onnxruntime's basic (hardware-independent) optimisations: constant
    folding of the shape arithmetic and redundant-node elimination; ``path`` itself on failure."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(path.with_suffix(".basic.onnx"))
    opts.log_severity_level = 3
    try:
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return onnx.load(opts.optimized_model_filepath)
    except Exception:  # onnxruntime raises its own untyped errors; the plain export still works
        return onnx.load(str(path))


def _untraced(graph: onnx.GraphProto, traced: dict[str, tuple[str, bool]], min_elements: int) -> list[str]:
    """Float initializers big enough to be weights that are not parameters."""
    return [
        i.name
        for i in graph.initializer
        if i.data_type == onnx.TensorProto.FLOAT and i.name not in traced and int(np.prod(i.dims)) >= min_elements
    ]


def _unpack_nodes(packed: list[onnx.TensorProto]) -> list[onnx.NodeProto]:
    """Nodes that turn the inputs ``/blob`` (every int8 weight, flattened, concatenated) and
    ``/scales`` (one per weight) back into the fp32 weights, named as the initializers were.

    One blob and one scale vector per member instead of two initializers per weight: the
    per-tensor protobuf overhead is a few percent of a small int8 model. ``Cast`` and ``Mul``
    rather than ``DequantizeLinear``: onnxruntime's extended optimisations rewrite
    ``DequantizeLinear -> MatMul`` into a dynamically quantised u8 x s8 MatMul (activation
    error, int8-kernel saturation), while this chain it constant-folds when it loads the model.
    """
    sizes = np.asarray([int(np.prod(i.dims)) for i in packed], dtype=np.int64)
    pieces = [f"{i.name}/p" for i in packed]
    scales = [f"{i.name}/s" for i in packed]
    nodes = [
        helper.make_node("Cast", ["/blob"], ["/blobf"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Constant", [], ["/sizes"], value=numpy_helper.from_array(sizes)),
        helper.make_node("Split", ["/blobf", "/sizes"], pieces, axis=0),
        helper.make_node("Constant", [], ["/ones"], value=numpy_helper.from_array(np.ones_like(sizes))),
        helper.make_node("Split", ["/scales", "/ones"], scales, axis=0),
    ]
    for init, piece, scale in zip(packed, pieces, scales, strict=True):
        if len(init.dims) == 1:
            nodes.append(helper.make_node("Mul", [piece, scale], [init.name]))
            continue
        shape = numpy_helper.from_array(np.asarray(init.dims, dtype=np.int64))
        nodes += [
            helper.make_node("Mul", [piece, scale], [f"{init.name}/m"]),
            helper.make_node("Constant", [], [f"{init.name}/d"], value=shape),
            helper.make_node("Reshape", [f"{init.name}/m", f"{init.name}/d"], [init.name]),
        ]
    return nodes


def _quantize(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-tensor int8: ``arr ~= q * scale``."""
    peak = float(np.max(np.abs(arr)))
    scale = np.float32(peak / 127.0 if peak > 0 else 1.0)
    q = np.clip(np.rint(arr / scale), -127, 127).astype(np.int8)
    return q, np.asarray(scale, dtype=np.float32)


def _member_graph(
    template: torch.nn.Module, n_channels: int, window: int, *, opset: int, optimise: bool, min_elements: int
) -> tuple[onnx.ModelProto, dict[str, tuple[str, bool]]]:
    """One member's ONNX graph and where each of its weights comes from."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = export_onnx(template, n_channels, window, Path(tmp) / "member.onnx", opset=opset)
        proto = _ort_basic(plain) if optimise else onnx.load(str(plain))
        traced = _trace_initializers(proto.graph, template)
        if optimise and _untraced(proto.graph, traced, min_elements):
            # an optimisation folded a weight into something else: use the plain export
            proto = onnx.load(str(plain))
            traced = _trace_initializers(proto.graph, template)
    untraced = _untraced(proto.graph, traced, min_elements)
    if untraced:
        raise ModelError(
            f"int8-compact needs every weight of the exported graph to be a parameter; {len(untraced)} are not "
            f"(e.g. {untraced[0]!r}) in {type(template).__name__}"
        )
    return proto, traced


def _member_function(
    proto: onnx.ModelProto, traced: dict[str, tuple[str, bool]], unpack: list[onnx.NodeProto], weight_inputs: list[str]
) -> onnx.FunctionProto:
    """The member graph as a function of ``x`` and ``weight_inputs``, which ``unpack`` turns into its weights."""
    fn_inputs = [INPUT_NAME, *weight_inputs]
    fn_nodes = list(unpack)
    for init in proto.graph.initializer:
        if init.name not in traced:
            value = copy.copy(init)
            value.name = ""
            fn_nodes.append(helper.make_node("Constant", [], [init.name], value=value))
    for node in proto.graph.node:
        node.name = ""
        fn_nodes.append(node)
    fn_inputs = _rename_locals(fn_nodes, fn_inputs, {INPUT_NAME, OUTPUT_NAME})
    used = {n.domain for n in fn_nodes}
    opsets = [helper.make_opsetid(o.domain, o.version) for o in proto.opset_import if o.domain in used]
    return helper.make_function(FUNCTION_DOMAIN, "member", fn_inputs, [OUTPUT_NAME], fn_nodes, opsets)


def _traced_values(member: torch.nn.Module, traced: dict[str, tuple[str, bool]]) -> dict[str, np.ndarray]:
    """Initializer name -> the member's fp32 value for it (transposed as the graph stores it)."""
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in member.state_dict().items()}
    values = {}
    for name, (key, transposed) in traced.items():
        if key not in state:
            raise ModelError(f"ensemble members must share one architecture; a member has no {key!r}")
        values[name] = np.ascontiguousarray(state[key].T if transposed else state[key])
    return values


def _member_arrays(
    member: torch.nn.Module, traced: dict[str, tuple[str, bool]], packed: list[onnx.TensorProto], kept: list[str]
) -> list[np.ndarray]:
    """A member's function arguments after ``x``: int8 blob, scales, fp32 scalars."""
    values = _traced_values(member, traced)
    arrays = []
    if packed:
        quantised = [_quantize(values[i.name]) for i in packed]
        arrays += [np.concatenate([q.ravel() for q, _ in quantised]), np.stack([scale for _, scale in quantised])]
    return arrays + [values[name] for name in kept]


def export_int8_compact(
    net: torch.nn.Module,
    n_channels: int,
    window: int,
    dst: str | Path,
    *,
    min_elements: int = 2,
    optimise: bool = True,
    opset: int = OPSET,
) -> Path:
    """Export ``net`` (one network or a ``MeanEnsemble``) as a compact weight-only int8 model.

    Args:
        net: module mapping ``(batch, n_channels, window)`` to ``(batch,)``; a module with a
            ``members`` ``ModuleList`` (same architecture each) is exported as the mean of its
            members.
        n_channels: channels per window.
        window: window length.
        dst: output file.
        min_elements: float weights with fewer elements stay fp32 (an int8 scalar plus its
            scale is larger than the fp32 scalar).
        optimise: store the member graph after onnxruntime's basic graph optimisations
            (constant-folded shape arithmetic: about half the nodes).
        opset: ONNX opset of the ops (>= 17).

    Returns:
        ``dst``.

    Raises:
        ModelError: if a weight of the exported graph cannot be traced back to a parameter
            (an exporter that fuses parameters, e.g. LSTM gates; use ``int8-dynamic``).
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    members = _members(net.eval())
    template = _randomised(members[0])
    proto, traced = _member_graph(template, n_channels, window, opset=opset, optimise=optimise, min_elements=min_elements)
    weights = [i for i in proto.graph.initializer if i.name in traced]
    packed = [i for i in weights if int(np.prod(i.dims)) >= min_elements]
    kept = [i.name for i in weights if int(np.prod(i.dims)) < min_elements]
    unpack = _unpack_nodes(packed) if packed else []
    member_fn = _member_function(proto, traced, unpack, [*(["/blob", "/scales"] if packed else []), *kept])
    arrays = [_member_arrays(member, traced, packed, kept) for member in members]
    return _save_ensemble(proto, member_fn, arrays, dst)


def _save_ensemble(
    proto: onnx.ModelProto, member_fn: onnx.FunctionProto, member_arrays: list[list[np.ndarray]], dst: Path
) -> Path:
    """The main graph: each member's weight arrays as initializers, one call of ``member_fn``
    per member, the mean of their outputs; checked and saved to ``dst``."""
    fresh = _names({INPUT_NAME, OUTPUT_NAME})
    inits: list[onnx.TensorProto] = []
    calls: list[onnx.NodeProto] = []
    outputs: list[str] = []
    for arrays in member_arrays:
        args = [INPUT_NAME]
        for arr in arrays:
            args.append(next(fresh))
            inits.append(numpy_helper.from_array(arr, args[-1]))
        outputs.append(OUTPUT_NAME if len(member_arrays) == 1 else next(fresh))
        calls.append(helper.make_node(member_fn.name, args, [outputs[-1]], domain=FUNCTION_DOMAIN))
    if len(member_arrays) > 1:
        n_name, sum_name = next(fresh), next(fresh)
        inits.append(numpy_helper.from_array(np.asarray(len(member_arrays), dtype=np.float32), n_name))
        calls += [helper.make_node("Sum", outputs, [sum_name]), helper.make_node("Div", [sum_name, n_name], [OUTPUT_NAME])]
    main = helper.make_graph(calls, "rul", list(proto.graph.input), list(proto.graph.output), inits)
    opsets = [*member_fn.opset_import, helper.make_opsetid(FUNCTION_DOMAIN, 1)]
    model = helper.make_model(main, opset_imports=opsets, functions=[member_fn], ir_version=proto.ir_version)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def export_packed(
    net: torch.nn.Module,
    n_channels: int,
    window: int,
    dst: str | Path,
    *,
    precision: Mapping[str, str] | None = None,
    default: str = "int4",
    vectors: str | None = "int8",
    block_size: int = 32,
    min_elements: int = 2,
    optimise: bool = True,
    opset: int = OPSET,
) -> Path:
    """Export ``net`` with each weight stored in its own precision (blockwise int4/int8, fp16, fp32).

    The graph is that of :func:`export_int8_compact` (one member function shared by ensemble
    members, onnxruntime's basic optimisations, short names); the weights of each precision
    travel as one group per member (see :mod:`models.export._blockwise`): 4-bit codes two per
    byte with one fp16 scale per block of ``block_size`` elements, 8-bit codes with the same
    blockwise scales, or fp16/fp32 values. Standard ops rebuild fp32 weights from them and
    onnxruntime constant-folds those ops when it loads the model, so the compute is fp32.

    Args:
        net: module mapping ``(batch, n_channels, window)`` to ``(batch,)``; a ``MeanEnsemble``
            is exported as the mean of its members.
        n_channels: channels per window.
        window: window length.
        dst: output file.
        precision: state-dict key (of one member, e.g. ``"time_layers.0.attn.qkv.weight"``) ->
            one of :data:`~models.export._blockwise.PRECISIONS`; unlisted weights get ``default``.
        default: precision of every weight not in ``precision``.
        vectors: precision of the one-dimensional weights (biases, LayerNorm scales and
            shifts) not in ``precision``; ``None``: ``default``. 8 bits by default: a LayerNorm
            scale near 1 loses a tenth of its value to a 4-bit step, and on the FD001 ensemble
            int8 vectors took the int4 variant's RMSE change from +2.5 % to +1.2 % for 0.5 %
            of the fp32 file.
        block_size: elements per quantisation block (even).
        min_elements: weights with fewer elements stay fp32 (a 4-bit scalar plus its scale is
            larger than the fp32 scalar).
        optimise: store the member graph after onnxruntime's basic graph optimisations.
        opset: ONNX opset of the ops (>= 17).

    Returns:
        ``dst``.

    Raises:
        ModelError: on an unknown precision or key, a bad block size, or a weight of the
            exported graph that cannot be traced back to a parameter (e.g. LSTM gates).
    """
    wanted = dict(precision or {})
    bad = sorted({default, vectors or default, *wanted.values()} - set(PRECISIONS))
    if bad:
        raise ModelError(f"precision must be one of {PRECISIONS}, got {bad}")
    if block_size < 2 or block_size % 2:
        raise ModelError(f"block_size must be an even number >= 2, got {block_size}")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    members = _members(net.eval())
    template = _randomised(members[0])
    proto, traced = _member_graph(template, n_channels, window, opset=opset, optimise=optimise, min_elements=min_elements)
    unknown = sorted(set(wanted) - {key for key, _ in traced.values()})
    if unknown:
        raise ModelError(f"precision names weights the exported graph does not have: {unknown[:3]}")
    groups: dict[str, Group] = {}
    for init in proto.graph.initializer:
        if init.name not in traced:
            continue
        size = int(np.prod(init.dims))
        key, flip = traced[init.name]
        fallback = vectors if vectors is not None and len(init.dims) == 1 else default
        prec = "fp32" if size < min_elements else wanted.get(key, fallback)
        group = groups.setdefault(prec, Group(prec, [], [], block_size))
        group.names.append(init.name)
        # encoded as PyTorch holds it: a Linear weight's blocks run along its input features
        group.shapes.append(tuple(int(d) for d in (init.dims[::-1] if flip else init.dims)))
        group.transposed.append(flip)
    ordered = [groups[p] for p in PRECISIONS if p in groups]
    fresh = (f"/u{i}" for i in itertools.count())
    unpack = [node for g in ordered for node in unpack_nodes(g, f"/{g.precision}/", fresh)]
    inputs = [name for g in ordered for name in g.input_names(f"/{g.precision}/")]
    member_fn = _member_function(proto, traced, unpack, inputs)
    arrays = []
    for member in members:
        state = member.state_dict()
        missing = sorted({key for key, _ in traced.values()} - set(state))
        if missing:
            raise ModelError(f"ensemble members must share one architecture; a member has no {missing[0]!r}")
        values = {name: state[key].detach().cpu().numpy() for name, (key, _) in traced.items()}
        arrays.append([arr for g in ordered for arr in encode_group(g, values)])
    return _save_ensemble(proto, member_fn, arrays, dst)
