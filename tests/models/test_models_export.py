"""ONNX export parity and quantised variants for every network, on random weights (fast)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from core.errors import ModelError
from models.export import (
    byte_breakdown,
    convert_fp16,
    export_int8_compact,
    export_onnx,
    onnx_session,
    prune_magnitude,
    quantize_int4_weight_only,
    quantize_int8_dynamic,
    quantize_int8_static,
    sparsity,
)
from models.nets import LSTMRULNet, TransformerRULNet
from models.torch_estimator import MeanEnsemble

C, T = 5, 16

NETS = {
    "transformer": lambda: TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32),
    "transformer-conv": lambda: TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32, conv_kernel=5),
    "transformer-patch": lambda: TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32, patch_len=5),
    # two patch scales (3- and 8-cycle tokens, both left-padded) in one attention
    "transformer-multiscale": lambda: TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32, patch_len=3, coarse_patch_len=8),
    "lstm": lambda: LSTMRULNet(C, T, hidden_size=16),
    # a seed ensemble exports as one graph averaging its members
    "ensemble": lambda: MeanEnsemble([TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32, conv_kernel=5) for _ in range(3)]),
}


@pytest.fixture(params=sorted(NETS))
def net(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    return NETS[request.param]().eval()


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return onnx_session(path).run(None, {"x": x})[0]


def test_fp32_export_matches_torch_with_dynamic_batch(net: torch.nn.Module, tmp_path: Path) -> None:
    path = export_onnx(net, C, T, tmp_path / "m.onnx")
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 17
    for batch in (1, 7, 64):
        x = np.random.default_rng(batch).standard_normal((batch, C, T)).astype(np.float32)
        with torch.inference_mode():
            ref = net(torch.from_numpy(x)).numpy()
        got = _run(path, x)
        assert got.shape == (batch,)
        np.testing.assert_allclose(got, ref, atol=1e-3, rtol=1e-4)


def test_quantised_variants_run_and_stay_close(net: torch.nn.Module, tmp_path: Path) -> None:
    fp32 = export_onnx(net, C, T, tmp_path / "fp32.onnx")
    x = np.random.default_rng(0).standard_normal((32, C, T)).astype(np.float32)
    ref = _run(fp32, x)
    variants = {
        "int8-dynamic": quantize_int8_dynamic(fp32, tmp_path / "d.onnx"),
        "int8-static": quantize_int8_static(fp32, tmp_path / "s.onnx", x),
        "fp16": convert_fp16(fp32, tmp_path / "h.onnx"),
        "int4": quantize_int4_weight_only(fp32, tmp_path / "q4.onnx"),
    }
    for name, path in variants.items():
        got = _run(path, x)
        assert got.shape == ref.shape, name
        # outputs are in cycles (0..~125); quantisation noise must stay a few cycles
        assert np.abs(got - ref).mean() < 5.0, name
        assert path.stat().st_size <= fp32.stat().st_size * 1.05, name


def test_export_rejects_old_opset(net: torch.nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="opset"):
        export_onnx(net, C, T, tmp_path / "m.onnx", opset=13)


def test_magnitude_pruning_zeroes_weights_and_still_exports(net: torch.nn.Module, tmp_path: Path) -> None:
    pruned = prune_magnitude(net, 0.5)
    assert sparsity(pruned) == pytest.approx(0.5, abs=0.05)
    assert sparsity(net) < 0.01  # the original is untouched
    path = export_onnx(pruned, C, T, tmp_path / "p.onnx")
    x = np.zeros((2, C, T), dtype=np.float32)
    assert _run(path, x).shape == (2,)


def _perturbed(net: torch.nn.Module) -> torch.nn.Module:
    """Like trained weights: no two LayerNorm scales equal (the exporter merges equal tensors)."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def _fake_quant(net: torch.nn.Module) -> torch.nn.Module:
    """The weights int8-compact stores: symmetric per-tensor int8 of every non-scalar tensor."""
    net = copy.deepcopy(net)
    with torch.no_grad():
        for p in net.parameters():
            if p.numel() >= 2:
                scale = p.abs().max() / 127.0
                p.copy_(torch.round(p / scale).clamp(-127, 127) * scale)
    return net


@pytest.mark.parametrize("name", [n for n in sorted(NETS) if n != "lstm"])
def test_int8_compact_is_the_int8_weight_network_and_smaller(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _perturbed(NETS[name]()).eval()
    path = export_int8_compact(net, C, T, tmp_path / "c.onnx")
    quantised = _fake_quant(net).eval()
    for batch in (1, 7):
        x = np.random.default_rng(batch).standard_normal((batch, C, T)).astype(np.float32)
        with torch.inference_mode():
            ref = quantised(torch.from_numpy(x)).numpy()
            fp32 = net(torch.from_numpy(x)).numpy()
        got = _run(path, x)
        assert got.shape == (batch,)
        # same int8 weights, fp32 compute: only float rounding apart
        np.testing.assert_allclose(got, ref, atol=1e-3, rtol=1e-4)
        assert np.abs(got - fp32).mean() < 5.0
    model = onnx.load(str(path))
    ops = {n.op_type for f in model.functions for n in f.node}
    assert "Cast" in ops and not ops & {"MatMulInteger", "DynamicQuantizeLinear", "DequantizeLinear"}
    # one int8 blob per member; in fp32 only the per-tensor scales and scalar weights
    n_members = len(getattr(net, "members", [net]))
    sizes = {dtype: 0 for dtype in (onnx.TensorProto.INT8, onnx.TensorProto.FLOAT)}
    for init in model.graph.initializer:
        sizes[init.data_type] += int(np.prod(init.dims))
    assert sum(i.data_type == onnx.TensorProto.INT8 for i in model.graph.initializer) == n_members
    assert sizes[onnx.TensorProto.FLOAT] < 0.01 * sizes[onnx.TensorProto.INT8]
    bytes_ = byte_breakdown(path)
    assert bytes_["functions"]["count"] == 1 and bytes_["nodes"]["count"] == n_members + 2 * (n_members > 1)
    # members share one function: the ensemble's file grows by its weights only
    dynamic = quantize_int8_dynamic(export_onnx(net, C, T, tmp_path / "fp32.onnx"), tmp_path / "d.onnx")
    assert path.stat().st_size < 0.85 * dynamic.stat().st_size


def test_int8_compact_rejects_fused_weights(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="int8-compact"):
        export_int8_compact(LSTMRULNet(C, T, hidden_size=16).eval(), C, T, tmp_path / "c.onnx")


def test_coarse_patches_need_finer_patches() -> None:
    with pytest.raises(ValueError, match="coarse_patch_len"):
        TransformerRULNet(C, T, patch_len=0, coarse_patch_len=8)
    with pytest.raises(ValueError, match="coarse_patch_len"):
        TransformerRULNet(C, T, patch_len=8, coarse_patch_len=4)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_late_weight_weights_over_predictions_in_the_training_loss() -> None:
    """``late_weight`` multiplies the squared errors of late (too high) predictions only."""
    net = LSTMRULNet(2, 6, hidden_size=4, num_layers=1, rul_cap=100.0, late_weight=3.0)
    scaled = torch.tensor([0.5, 0.2, 0.9])  # what encode() returns: RUL / cap
    net.encode = lambda x: scaled  # type: ignore[method-assign]
    y = torch.tensor([40.0, 20.0, 100.0])  # errors in cap units: +0.1 (late), 0.0, -0.1 (early)
    loss = net.training_step((torch.zeros(3, 2, 6), y), 0)
    assert float(loss) == pytest.approx((3.0 * 0.1**2 + 0.0 + 0.1**2) / 3, rel=1e-5)
    net.late_weight = 1.0
    assert float(net.training_step((torch.zeros(3, 2, 6), y), 0)) == pytest.approx((0.1**2 + 0.1**2) / 3, rel=1e-5)
    with pytest.raises(ValueError, match="late_weight"):
        LSTMRULNet(2, 6, late_weight=0.0)
