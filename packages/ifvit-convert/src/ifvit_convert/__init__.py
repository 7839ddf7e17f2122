"""ifvit_convert: LoFTR PyTorch checkpoints -> IFViT-JAX parameters (torch only for reading them).

Convert (needs the `torch` extra):

    from ifvit_convert.convert import convert_file
    conv, path = convert_file("outdoor_ds.ckpt", "loftr_outdoor.safetensors")

Load (torch-free):

    from ifvit_convert import load_converted, apply_converted, load_loftr
    flat, meta = load_converted("loftr_outdoor.safetensors")
    model, meta = load_loftr("loftr_outdoor.safetensors")   # ifvit_core.loftr.LoFTR, eval mode
    meta = init_from_converted(module1_trunk, "loftr_outdoor.safetensors")  # `--init-loftr`

Importing this package never imports torch; only `ifvit_convert.checkpoint.read_checkpoint` (and
`ifvit_convert.verify`) do, lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ifvit_convert.errors import ConversionError, TorchMissingError
from ifvit_convert.io import (
    apply_converted,
    build_model_from_meta,
    init_from_converted,
    load_converted,
    load_loftr,
    loftr_config_from_meta,
    save_converted,
    select_groups,
    sidecar_path,
)

__all__ = [
    "ConversionError",
    "TorchMissingError",
    "__version__",
    "apply_converted",
    "build_model_from_meta",
    "init_from_converted",
    "load_converted",
    "load_loftr",
    "loftr_config_from_meta",
    "save_converted",
    "select_groups",
    "sidecar_path",
]
