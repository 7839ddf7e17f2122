"""ifvit_train: IFViT training, serving and evaluation, in three folders.

    serving/     load a bundle and use it: bundles and their weights, preprocessing, 1:1 inference
                 (`infer.Verifier`), pair lists, galleries and 1:N search, the shipped model.
                 Imports neither of the other two: `ifvit match` runs without the training stack.
    training/    the sharded Module 1 and Module 2 trainers, their data, optimizer, Orbax
                 checkpoints with exact resume, what a new run records in bundle.json, and the
                 label-fitted linear necks (`whiten`).
    evaluation/  the FVC protocol runs, metrics, plots, calibration and identification reports.

Arrows go from training and evaluation to serving (and from training to evaluation's metrics and
plots), never back.
"""

__version__ = "0.1.0"
