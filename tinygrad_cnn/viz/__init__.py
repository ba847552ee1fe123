"""Figures from plain NumPy arrays (so the engine and the JAX twin share them).

Every function returns a ``matplotlib.figure.Figure`` built without pyplot;
save it with ``save_figure(fig, path)`` or display it in a notebook.
matplotlib is imported lazily, when a figure is made.
"""

from tinygrad_cnn.viz._base import reduce_channels, save_figure
from tinygrad_cnn.viz.attribution import (
    attribution_heatmap,
    method_comparison,
    noise_sweep,
    occlusion_map,
    relative_change,
    sequence_saliency,
    smoothgrad_convergence,
)
from tinygrad_cnn.viz.conv import conv_sliding, correlate_valid
from tinygrad_cnn.viz.curves import line_plot, loss_comparison, training_curves
from tinygrad_cnn.viz.explore import Explorer, explore, layer_names
from tinygrad_cnn.viz.graph import draw_graph, layered_layout
from tinygrad_cnn.viz.grids import feature_map_grid, filter_grid, image_grid

__all__ = [
    "Explorer", "attribution_heatmap", "conv_sliding", "correlate_valid", "draw_graph", "explore", "feature_map_grid",
    "filter_grid", "image_grid", "layer_names", "layered_layout", "line_plot", "loss_comparison", "method_comparison",
    "noise_sweep", "occlusion_map", "reduce_channels", "relative_change", "save_figure", "sequence_saliency",
    "smoothgrad_convergence", "training_curves",
]
