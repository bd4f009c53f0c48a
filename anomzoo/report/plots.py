"""The report's three pictures: ROC curve, score histogram, anomaly-map overlays."""

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in CI
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from anomzoo.files import atomic_path


def _save(figure, path):
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)


def roc_plot(labels, scores, path):
    fpr, tpr, _ = roc_curve(labels, scores)
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.plot(fpr, tpr, label=f"AUROC {roc_auc_score(labels, scores):.3f}")
    axis.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="Image-level ROC")
    axis.legend(loc="lower right")
    _save(figure, path)


def score_histogram(labels, scores, path, threshold=None):
    labels, scores = np.asarray(labels), np.asarray(scores)
    bins = np.histogram_bin_edges(scores, bins=40)
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.hist(scores[labels == 0], bins=bins, alpha=0.6, label="normal", density=True)
    axis.hist(scores[labels == 1], bins=bins, alpha=0.6, label="anomalous", density=True)
    if threshold is not None:
        axis.axvline(threshold, color="black", linewidth=1, label="threshold (from normal validation)")
    axis.set(xlabel="anomaly score", ylabel="density", title="Test scores")
    axis.legend()
    _save(figure, path)


def overlay_grid(images, maps, labels, scores, path, masks=None, per_class=4):
    """The highest- and lowest-scored images of each class with their anomaly maps overlaid."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    picks = []
    for label in (0, 1):
        index = np.flatnonzero(labels == label)
        index = index[np.argsort(-scores[index])]
        picks += list(index[: per_class // 2]) + list(index[-(per_class - per_class // 2):])
    rows = 3 if masks is not None else 2
    figure, axes = plt.subplots(rows, len(picks), figsize=(1.6 * len(picks), 1.7 * rows), squeeze=False)
    vmax = float(np.percentile(maps, 99.5)) or 1.0  # one colour scale for all, so maps compare
    for col, i in enumerate(picks):
        image = images[i].squeeze()
        cmap = "gray" if image.ndim == 2 else None
        axes[0, col].imshow(image, cmap=cmap)
        axes[0, col].set_title(f"{'anom' if labels[i] else 'norm'} {scores[i]:.3g}", fontsize=7)
        axes[1, col].imshow(image, cmap=cmap)
        axes[1, col].imshow(maps[i].squeeze(), cmap="jet", alpha=0.5, vmin=0, vmax=vmax)
        if masks is not None:
            axes[2, col].imshow(masks[i].squeeze(), cmap="gray", vmin=0, vmax=1)
    for axis in axes.ravel():
        axis.axis("off")
    axes[0, 0].set_ylabel("image")
    _save(figure, path)
