"""Training: the Module 1 (`module1`) and Module 2 (`module2`) trainers and what they share.

config (TrainConfig), data (Grain pipelines), loop (the loop, logging, checkpoints), optim,
state, partition (the one description of the parameter-tree split), checkpoint (Orbax, exact
resume), records (the bundle.json of a new run), run (`ifvit train dense|match|all`), validate,
tensorboard, necks (the linear necks' fits: PCA and within-finger whitening) and whiten (their
features and the bundle `ifvit whiten` writes).
"""
