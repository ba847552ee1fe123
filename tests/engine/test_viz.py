"""Figures: every function returns a Figure that saves as a non-empty PNG; channel reduction and colour scales."""

import numpy as np
import pytest
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

import tinygrad_cnn as tg
from tinygrad_cnn import viz
from tinygrad_cnn.viz._base import clip_abs, show_heat

RNG = np.random.default_rng(0)
IMG = RNG.random((12, 12, 1)).astype(np.float32)
MAP = RNG.normal(size=(12, 12, 1))


def _small_graph():
    x = tg.Tensor(2.0, requires_grad=True)
    w = tg.Tensor(RNG.normal(size=(3,)), requires_grad=True)
    a = x * x
    return (w * a + a).sum() * 0.5, {"x": x, "w": w, "a": a}


FIGURES = {
    "image_grid": lambda: viz.image_grid(RNG.random((5, 8, 8, 1)), titles=list("abcde"), ncols=3),
    "image_grid_rgb": lambda: viz.image_grid([RNG.random((8, 8, 3)), RNG.random((3, 8, 8))[0]]),
    "feature_maps_mean": lambda: viz.feature_map_grid(
        {"conv1": RNG.random((1, 10, 10, 4)), "pool": RNG.random((5, 5, 4)), "dense": RNG.random((1, 10))},
        image=IMG),
    "feature_maps_layer": lambda: viz.feature_map_grid({"conv1": RNG.random((10, 10, 6))}, layer="conv1"),
    "filters": lambda: viz.filter_grid(RNG.normal(size=(3, 3, 2, 8))),
    "filters_rgb": lambda: viz.filter_grid(RNG.normal(size=(5, 5, 3, 4))),
    "filters_1d": lambda: viz.filter_grid(RNG.normal(size=(5, 2, 4)), in_channel=1),
    "heat_abs": lambda: viz.attribution_heatmap(IMG, MAP, title="saliency"),
    "heat_signed": lambda: viz.attribution_heatmap(IMG, MAP, signed=True),
    "occlusion": lambda: viz.occlusion_map(IMG, MAP[..., 0]),
    "methods": lambda: viz.method_comparison(IMG, {
        "saliency": MAP, "SmoothGrad": MAP ** 2, "integrated gradients": MAP, "occlusion": MAP[..., 0],
        "Grad-CAM": RNG.random((3, 3))}),
    "smoothgrad_strip": lambda: viz.smoothgrad_convergence(IMG, {n: MAP / n for n in (1, 5, 25, 50)}),
    "noise_sweep": lambda: viz.noise_sweep(IMG, {s: MAP * s for s in (0.0, 0.1, 0.2, 0.3)}),
    "training_curves": lambda: viz.training_curves(
        {"loss": [1.0, 0.5, 0.3], "accuracy": [0.5, 0.8, 0.9], "val_loss": [1.1, 0.6, 0.4]}),
    "loss_comparison": lambda: viz.loss_comparison([1.0, 0.5, 0.3], [1.0, 0.5000001, 0.3]),
    "line_plot": lambda: viz.line_plot({"sigmoid": [1e-1, 1e-3], "relu": [1, 1]}, logy=True),
    "conv_sliding": lambda: viz.conv_sliding(RNG.random((6, 6)), np.eye(3), position=(1, 2)),
    "draw_graph": lambda: viz.draw_graph(*_small_graph()),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_saves_png(name, tmp_path):
    fig = FIGURES[name]()
    assert isinstance(fig, Figure)
    path = viz.save_figure(fig, tmp_path / "sub" / f"{name}.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_reduce_channels():
    a = RNG.normal(size=(2, 4, 5, 3))
    np.testing.assert_allclose(viz.reduce_channels(a, "max_abs"), np.abs(a).max(-1))
    np.testing.assert_allclose(viz.reduce_channels(a, "sum_abs"), np.abs(a).sum(-1))
    np.testing.assert_allclose(viz.reduce_channels(a, "sum"), a.sum(-1))
    first = np.moveaxis(a, -1, 1)
    np.testing.assert_allclose(viz.reduce_channels(first, "sum", "channels_first"), a.sum(-1))
    np.testing.assert_allclose(viz.reduce_channels(a[0], "sum"), a[0].sum(-1))
    with pytest.raises(ValueError, match="how"):
        viz.reduce_channels(a, "mean_abs")


def test_heat_scales():
    amap = np.ones((10, 10))
    amap[0, 0] = 1000.0  # one outlier must not set the colour scale
    clipped, vmax = clip_abs(amap)
    assert vmax < 1000 and clipped.max() == vmax
    fig = Figure()
    ax = fig.subplots()
    im = show_heat(ax, np.linspace(-1, 3, 100).reshape(10, 10), signed=True)
    assert isinstance(im.norm, TwoSlopeNorm) and im.norm.vcenter == 0.0
    assert im.norm.vmin == -im.norm.vmax


def test_conv_sliding_output_and_errors():
    x = np.arange(25.0).reshape(5, 5)
    k = np.array([[1.0, 0.0], [0.0, -1.0]])
    out = viz.correlate_valid(x, k, stride=2)
    np.testing.assert_allclose(out, np.full((2, 2), -6.0))
    with pytest.raises(ValueError, match="position"):
        viz.conv_sliding(x, k, position=(4, 0))


def test_draw_graph_keeps_graph_and_grads():
    out, names = _small_graph()
    viz.draw_graph(out, names)
    assert names["x"].grad is None
    out.backward()
    assert names["x"].grad is not None


def test_viz_bad_inputs():
    with pytest.raises(ValueError, match="layer"):
        viz.feature_map_grid({"a": RNG.random((4, 4, 2))}, layer="b")
    with pytest.raises(ValueError, match="titles"):
        viz.image_grid(RNG.random((2, 4, 4)), titles=["one"])
    with pytest.raises(ValueError, match="equal length"):
        viz.loss_comparison([1, 2], [1, 2, 3])
    with pytest.raises(TypeError, match="history"):
        viz.training_curves([1, 2])


def _texts(ax):
    return " ".join(t.get_text() for t in ax.texts)


def test_loss_comparison_log_panel_counts_what_it_cannot_draw():
    same = viz.loss_comparison([1.0, 0.5, 0.3], [1.0, 0.5, 0.3], labels=["ours", "theirs"])
    top, bottom = same.axes
    assert [t.get_text() for t in top.get_legend().get_texts()] == ["ours", "theirs"]
    assert bottom.get_ylabel() == "|ours - theirs|" and bottom.get_yscale() == "log"
    assert "equal at 3 of 3 steps" in _texts(bottom) and list(bottom.get_yticks()) == [] and not bottom.lines
    mixed = viz.loss_comparison([1.0, np.inf, 0.3, 0.2], [1.0, 0.5, 0.31, 0.2])
    bottom = mixed.axes[1]
    assert "equal at 2 of 4 steps" in _texts(bottom) and "not finite at 1 of 4 steps" in _texts(bottom)
    shown = bottom.lines[0].get_ydata()
    np.testing.assert_allclose(shown[2], 0.01)
    assert np.isnan(shown[[0, 1, 3]]).all()
    assert not viz.loss_comparison([1.0, 0.5], [0.9, 0.4]).axes[1].texts


def test_line_plot_logy_names_the_hidden_values():
    fig = viz.line_plot({"a": [1.0, 0.0, -1.0, 2.0], "b": [1.0, np.inf], "c": [1.0, 2.0]}, logy=True)
    assert fig.axes[0].get_legend_handles_labels()[1] == ["a (2 values <= 0: not shown)",
                                                          "b (1 not finite: not shown)", "c"]
    assert fig.axes[0].get_yscale() == "log"
    assert viz.line_plot({"a": [0.0, -1.0]}).axes[0].get_legend_handles_labels()[1] == ["a"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(curve_a=[1, 2], curve_b=[1, 2, 3]), r"curve_a and curve_b .* equal length; got shapes \(2,\) and \(3,\)"),
    (dict(curve_a=[], curve_b=[]), "non-empty"),
    (dict(labels=("a",)), r"labels must be two strings, one per curve; got \('a',\)"),
    (dict(labels="ab"), "labels must be two strings"),
])
def test_loss_comparison_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.loss_comparison(**{"curve_a": [1.0, 2.0], "curve_b": [1.0, 2.0], **kwargs})
