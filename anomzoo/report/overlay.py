"""One image as an inspector reads it: the picture at its own resolution, the anomaly map upsampled
onto it as a heat overlay in the map's own units, the region above the map threshold outlined, the
ground truth where there is one, and the verdict with its score.

The overlay's colours follow one rule everywhere (here, the run report, `anomzoo predict` and the
page `anomzoo serve` answers on `/`, which draws with the same lookup table and formulas in
JavaScript): map values run from 0 to twice the map threshold, so the threshold sits mid-scale; a
value's colour is the colour map's entry for it, blended over the image with an opacity that grows
with the value (low values leave the picture visible, a defect stays readable under its heat).
"""

import cv2
import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in CI
import matplotlib.pyplot as plt
import numpy as np

from anomzoo.files import atomic_path

COLORMAP = "turbo"
#: the heat's opacity at the top of the scale; at the threshold it is half of it.
MAX_OPACITY = 0.75
#: pictures are drawn at their own size, enlarged to at least this many pixels on the long side
#: (a 28 px digit would be unreadable) and shrunk to at most MAX_SIDE (one small file per image).
MIN_SIDE, MAX_SIDE = 256, 1024


def colour_table():
    """The colour map as 256 RGB uint8 rows (the page draws with this same table)."""
    return np.round(matplotlib.colormaps[COLORMAP](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def map_scale(map_threshold, anomaly_map=None):
    """(low, high) of the colour scale: 0 to twice the threshold, or the map's own range without one."""
    if map_threshold is not None and map_threshold > 0:
        return 0.0, 2.0 * float(map_threshold)
    values = np.asarray(anomaly_map, dtype=np.float64)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    return low, high if high > low else low + 1.0


def upsample(anomaly_map, height, width):
    """The model's (h, w[, 1]) map resized bilinearly to (height, width) (pixel centres aligned)."""
    values = np.asarray(anomaly_map, dtype=np.float32).reshape(np.shape(anomaly_map)[:2])
    if values.shape == (height, width):
        return values
    return cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)


def outline(region, thickness=1):
    """The boundary pixels of a boolean region (inside pixels with a 4-neighbour outside), widened to
    `thickness` pixels inwards and outwards."""
    region = region.astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    edge = region & (1 - cv2.erode(region, cross, borderType=cv2.BORDER_REPLICATE))
    if thickness > 1:
        edge = cv2.dilate(edge, np.ones((thickness, thickness), np.uint8))
    return edge.astype(bool)


def outline_thickness(height, width):
    return max(1, int(max(height, width) / 256 + 0.5))  # rounded half up, as the page's Math.round


def heat_overlay(image, anomaly_map, map_threshold, scale=None):
    """`image` (H, W, 1 or 3) uint8 with `anomaly_map` (any size) upsampled and blended over it, the
    pixels at or above `map_threshold` outlined (white on a dark edge); (H, W, 3) uint8 RGB."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    rgb = np.repeat(image[..., :1], 3, axis=-1) if image.ndim == 2 or image.shape[-1] == 1 else image[..., :3]
    values = upsample(anomaly_map, height, width)
    low, high = scale or map_scale(map_threshold, values)
    level = np.clip((np.nan_to_num(values, nan=high) - low) / (high - low), 0.0, 1.0)
    heat = colour_table()[np.round(level * 255).astype(np.int64)].astype(np.float32)
    opacity = (MAX_OPACITY * level)[..., None]
    blended = np.round(rgb.astype(np.float32) * (1.0 - opacity) + heat * opacity).astype(np.uint8)
    if map_threshold is not None:
        thickness = outline_thickness(height, width)
        region = values >= map_threshold
        blended[outline(region, thickness + 2)] = 0  # a dark rim keeps the line visible on white parts
        blended[outline(region, thickness)] = 255
    return blended


def verdict_text(score, score_threshold):
    if score is None:
        return ""
    if score_threshold is None:
        return f"score {score:.4g} (no threshold)"
    if score >= score_threshold or score != score:
        return f"ANOMALOUS: score {score:.4g} >= threshold {score_threshold:.4g}"
    return f"normal: score {score:.4g} < threshold {score_threshold:.4g}"


def _display_factor(height, width):
    side = max(height, width)
    return MIN_SIDE / side if side < MIN_SIDE else min(1.0, MAX_SIDE / side)


def inspection_figure(path, image, anomaly_map, *, map_threshold, score=None, score_threshold=None,
                      mask=None, title="", scale=None):
    """Write one PNG: the image, the heat overlay with a colour bar in map units (threshold marked),
    and the ground-truth mask outlined on the image when `mask` is given; verdict and score on top."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    values = upsample(anomaly_map, height, width)
    scale = scale or map_scale(map_threshold, values)
    gray = image.ndim == 2 or image.shape[-1] == 1
    panels = [("image", image[..., 0] if gray else image),
              ("anomaly map (outline: above the map threshold)", heat_overlay(image, values, map_threshold, scale))]
    if mask is not None:
        truth = np.repeat(image[..., :1], 3, axis=-1) if gray else image[..., :3].copy()
        truth[outline(np.asarray(mask).reshape(height, width) > 0, outline_thickness(height, width))] = (0, 255, 0)
        panels.append(("ground truth (green)", truth))
    factor = _display_factor(height, width)
    dpi, pad, bar, top = 100, 12, 84, 58  # pixels
    panel_w, panel_h = width * factor, height * factor
    fig_w, fig_h = len(panels) * (panel_w + pad) + pad + bar, panel_h + top + pad
    figure = plt.figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi)
    for index, (name, picture) in enumerate(panels):
        axis = figure.add_axes([(pad + index * (panel_w + pad)) / fig_w, pad / fig_h, panel_w / fig_w, panel_h / fig_h])
        axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255,
                    interpolation="nearest" if factor >= 1 else "antialiased")
        axis.set_title(name, fontsize=8)
        axis.axis("off")
    colour_axis = figure.add_axes([(fig_w - bar + 8) / fig_w, pad / fig_h, 12 / fig_w, panel_h / fig_h])
    mappable = plt.cm.ScalarMappable(matplotlib.colors.Normalize(*scale), matplotlib.colormaps[COLORMAP])
    colour_bar = figure.colorbar(mappable, cax=colour_axis)
    colour_bar.ax.tick_params(labelsize=7)
    if map_threshold is not None:
        colour_bar.ax.axhline(map_threshold, color="white", linewidth=2)
        colour_bar.ax.axhline(map_threshold, color="black", linewidth=0.8)
    colour_bar.set_label("map value", fontsize=7)
    verdict = verdict_text(score, score_threshold)
    figure.suptitle("\n".join(t for t in (title, verdict) if t), fontsize=9, y=1 - 4 / fig_h, va="top",
                    color="firebrick" if verdict.startswith("ANOMALOUS") else "black")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")
    plt.close(figure)
