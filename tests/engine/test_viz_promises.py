"""Each figure does what it says: log axes are log, compared panels share one colour scale, signed maps are
centred on 0 and never blended over the image, the graph's edges miss the boxes, the activation map lines up
with the input, titles fit, and figures are saved at a projector-readable resolution."""

import numpy as np
import pytest
from matplotlib.colors import TwoSlopeNorm
from matplotlib.image import AxesImage

import tinygrad_cnn as tg
from tinygrad_cnn import viz
from tinygrad_cnn.trace import graph_nodes

RNG = np.random.default_rng(1)
IMG = RNG.random((10, 10, 1))
SIGNED = RNG.normal(size=(10, 10, 1))


def _images(ax):
    return [a for a in ax.get_children() if isinstance(a, AxesImage)]


def _inside(inner, outer, slack=1.0):
    return (inner.x0 >= outer.x0 - slack and inner.y0 >= outer.y0 - slack and inner.x1 <= outer.x1 + slack
            and inner.y1 <= outer.y1 + slack)


def test_log_x_axis_is_logarithmic_and_integer_axes_get_integer_ticks():
    eps = np.logspace(-10, -1, 19)
    fig = viz.line_plot({"err": eps ** 2 + 1e-16 / eps}, x=eps, logx=True, logy=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo < 1e-9 and hi > 0.05  # the points spread over the decades instead of piling up at x = 0
    layers = viz.line_plot({"norm": [3.0, 2.0, 1.0]}, x=np.arange(1, 4)).axes[0]
    assert all(float(t).is_integer() for t in layers.get_xticks())   # no "1.5 layers"
    fractional = viz.line_plot({"a": [1.0, 2.0, 3.0]}, x=[1.0, 1.5, 2.0]).axes[0]
    assert not all(float(t).is_integer() for t in fractional.get_xticks())
    epochs = viz.training_curves({"loss": [1.0, 0.5, 0.4]}).axes[0]
    assert all(float(t).is_integer() for t in epochs.get_xticks())


def test_line_plot_logx_names_points_it_cannot_draw():
    fig = viz.line_plot({"a": [1.0, 2.0, 3.0]}, x=[0.0, 1.0, 10.0], logx=True)
    assert fig.axes[0].get_legend_handles_labels()[1] == ["a (1 x <= 0: not shown)"]


def test_compared_panels_share_one_colour_scale():
    train = np.array([[0.0, 2.0], [2.0, 0.0]])
    test = np.ones((2, 2))
    fig = viz.image_grid([train, test], colorbar=True)
    limits = {_images(ax)[0].get_clim() for ax in fig.axes if _images(ax) and ax.get_label() != "<colorbar>"}
    assert limits == {(0.0, 2.0)}       # the all-ones panel is mid-scale, not the colour of the zeros
    assert len(fig.axes) == 3           # two panels and the colour bar
    separate = viz.image_grid([train, test])
    assert {_images(ax)[0].get_clim() for ax in separate.axes} == {(0.0, 2.0), (1.0, 1.0)}


def test_graph_edges_never_pass_behind_a_box():
    x, y = tg.Tensor(np.float64(0.8), requires_grad=True), tg.Tensor(np.float64(-1.3), requires_grad=True)
    a = x * y
    b = a.tanh() + x
    f = a * b + a.exp() * 0.5
    nodes = graph_nodes(f)
    pos, routes = viz.layered_layout([id(n) for n in nodes], {id(n): [id(p) for p in n._ctx.inputs] if n._ctx else []
                                                             for n in nodes})
    boxes = set(pos.values())
    assert len(boxes) == len(nodes)    # no two boxes in one place
    half_w, half_h = 0.3, 0.2          # a box, in layout units (columns 1 apart, rows 1 apart)
    for _, _, route in routes:
        for (x0, y0), (x1, y1) in zip(route[:-1], route[1:], strict=True):
            assert x1 == x0 + 1, route  # one column per segment: waypoints in every column crossed
            for bx, by in boxes - {route[0], route[-1]}:
                ts = np.linspace(0, 1, 201)
                px, py = x0 + ts * (x1 - x0), y0 + ts * (y1 - y0)
                hit = (np.abs(px - bx) < half_w) & (np.abs(py - by) < half_h)
                assert not hit.any(), f"edge {route} runs through the box at {(bx, by)}"
    fig = viz.draw_graph(f, names={"x": x, "y": y, "a": a, "b": b, "f": f})
    assert "10 nodes (1 constant, no gradient)" in fig.axes[0].get_title()


@pytest.mark.parametrize("make", [
    lambda: viz.attribution_heatmap(IMG, SIGNED, signed=True),
    lambda: viz.occlusion_map(IMG, SIGNED[..., 0]),
    lambda: viz.method_comparison(IMG, {"saliency": SIGNED, "occlusion": SIGNED[..., 0]}),
], ids=["heatmap", "occlusion", "methods"])
def test_maps_are_never_blended_and_signed_maps_are_centred(make):
    fig = make()
    heat = [im for ax in fig.axes for im in _images(ax) if im.get_cmap().name != "gray"
            and ax.get_label() != "<colorbar>"]
    assert heat and all(im.get_alpha() in (None, 1.0) for im in heat)
    for ax in fig.axes:  # a map never shares its axes with the grey image
        cmaps = {im.get_cmap().name for im in _images(ax)}
        assert not ("gray" in cmaps and len(cmaps) > 1), cmaps
    signed = [im for im in heat if im.get_cmap().name == "RdBu_r"]
    assert signed and all(isinstance(im.norm, TwoSlopeNorm) and im.norm.vcenter == 0.0
                          and im.norm.vmin == -im.norm.vmax for im in signed)
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == len(heat)  # a colour bar per map
    titles = " ".join(ax.get_title() for ax in fig.axes) + fig.get_suptitle()
    assert "signed" in titles or "red" in titles


def test_absolute_maps_say_so_and_how_they_were_scaled():
    fig = viz.attribution_heatmap(IMG, SIGNED)
    assert "|a|, clipped at the 99th percentile" in fig.axes[1].get_title()
    strip = viz.smoothgrad_convergence(IMG, {1: SIGNED, 4: SIGNED * 0.5 + 0.1, 16: SIGNED * 0.5 + 0.11})
    assert "each panel scaled to its own 99th percentile" in strip.get_suptitle()
    titles = [ax.get_title() for ax in strip.axes[1:]]
    assert titles[0] == "n = 1" and "% change" in titles[1]
    changes = [float(t.split("\n")[1].split("%")[0]) for t in titles[1:]]
    assert changes[0] > changes[1]      # the strip reports convergence as numbers


def test_relative_change():
    a = np.array([3.0, 4.0])
    assert viz.relative_change(a, a) == 0.0
    assert viz.relative_change(a, np.zeros(2)) == pytest.approx(1.0)


def test_kernels_are_named_with_their_values_on_one_scale():
    kernels = np.stack([np.array([[-1.0, 0, 1]] * 3), np.full((3, 3), 1 / 9)], -1)[:, :, None, :]
    fig = viz.filter_grid(kernels, names=["edge", "blur"], values=True)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and _images(ax)]
    assert [ax.get_title() for ax in panels] == ["edge", "blur"]
    assert [t.get_text() for t in panels[0].texts] == ["-1", "0", "1"] * 3
    assert panels[1].texts[0].get_text() == "0.11"
    assert {_images(ax)[0].get_clim() for ax in panels} == {(-1.0, 1.0)}
    with pytest.raises(ValueError, match="names"):
        viz.filter_grid(kernels, names=["one"])


def test_activation_map_lines_up_with_the_input():
    x = np.zeros((9, 9))
    x[2:5, 5:8] = 1.0
    k = np.ones((3, 3))
    for stride in (1, 2):
        out = viz.correlate_valid(x, k, stride)
        fig = viz.conv_sliding(x, k, position=(1, 1), stride=stride)
        ax = next(a for a in fig.axes if a.get_title().startswith("activation map"))
        im = _images(ax)[0]
        left, right, bottom, top = im.get_extent()
        # cell (i, j) is centred on the centre of the window it reads: i*s + 1, j*s + 1 for a 3x3 kernel
        assert (left + stride / 2, top + stride / 2) == (1.0, 1.0)
        assert right - left == stride * out.shape[1] and bottom - top == stride * out.shape[0]
        assert ax.get_xlim() == (-0.5, 8.5) and ax.get_ylim() == (8.5, -0.5)


def test_titles_fit_and_figures_are_projector_readable(tmp_path):
    title = "gradient norm per layer, 16 dense layers (1 = closest to the input)"
    fig = viz.line_plot({"a": [1.0, 0.1]}, title=title, logy=True)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    assert _inside(fig.axes[0].title.get_window_extent(renderer), fig.bbox)
    path = viz.save_figure(fig, tmp_path / "f.png")
    import matplotlib.image

    height, width = matplotlib.image.imread(path).shape[:2]
    assert (width, height) == tuple(round(v * 150) for v in fig.get_size_inches())


def test_sequence_saliency_rows_share_one_scale_aligned_with_the_signal():
    signals = RNG.normal(size=(3, 12))
    maps = RNG.normal(size=(3, 12)) * np.array([[1.0], [5.0], [0.1]])
    fig = viz.sequence_saliency(signals, maps, titles=["a", "b", "c"])
    bars = [ax for ax in fig.axes if ax.patches]
    assert len(bars) == 3 and {ax.get_ylim() for ax in bars} == {bars[0].get_ylim()}   # one scale for all rows
    assert bars[0].get_ylim()[1] >= np.abs(maps).max()
    heights = [p.get_height() for p in bars[2].patches]
    np.testing.assert_allclose(heights, maps[2])
    assert [p.get_x() + p.get_width() / 2 for p in bars[0].patches] == list(range(12))   # bar i under value i
    with pytest.raises(ValueError, match="same shape"):
        viz.sequence_saliency(signals, maps[:, :5])
