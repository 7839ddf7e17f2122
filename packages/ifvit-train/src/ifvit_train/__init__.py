"""ifvit_train: IFViT training, serving and evaluation.

Training: sharded Module 1 (`dense`) and Module 2 (`match`) trainers over `jax.sharding` meshes,
Orbax checkpoints with exact resume, the Module 1 -> Module 2 transfer. Serving: model bundles and
the shipped model (`bundle`, `shipped`), 1:1 inference (`infer`), galleries and 1:N search.
Evaluation: the FVC protocols, metrics, plots and calibration.
"""

__version__ = "0.1.0"
