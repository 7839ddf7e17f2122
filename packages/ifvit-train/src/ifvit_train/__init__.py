"""ifvit_train: sharded IFViT training (meshes, Module 1 step; Orbax checkpoints and the Module 2
trainer are the next milestone)."""

__version__ = "0.1.0"
