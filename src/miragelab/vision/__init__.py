"""Induced emergence in vision (the paper's Part IV): a harsh metric makes it appear.

Shallow autoencoders and MLP classifiers of increasing width are trained on
real images (scikit-learn's bundled digits by default; MNIST IDX files and a
CIFAR-100 ``.npz`` export when given) and scored with a smooth metric (per-image
MSE, per-image accuracy) and a sharp one (``Reconstruction_c``, subset
accuracy over sequences of ``K`` images). The results are ordinary scores
tables, so the emergence measures and the mirage/genuine verdict treat them
like any language task.

Modules: :mod:`~miragelab.vision.data` (loaders), :mod:`~miragelab.vision.metrics`
(pure numpy), :mod:`~miragelab.vision.train` (torch models and training),
:mod:`~miragelab.vision.ladder` (ladders, scores, analysis); the figure and
output folder are written by :mod:`miragelab.report.vision_figures`, the
commands live in :mod:`miragelab.cli.vision` (``mirage vision``).
"""
