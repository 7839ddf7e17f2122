"""Model bundles: the unit every command loads (a training workdir is a bundle).

    BUNDLE/
      bundle.json            format, kind ('dense' = Module 1, 'match' = Module 1 + Module 2),
                             the full IFViTConfig, preprocessing, which stages are trained,
                             training data (manifest hash, fingers), TrainConfig, library versions,
                             status, step, validation, and for 'match' the Module 1 bundle it
                             started from (hash)
      checkpoints/<step>/    Orbax: state (params, BN statistics, optimizer state, step) + Grain
                             iterator state (JSON)
      module1/               'match' only: the frozen Module 1 weights (Orbax), so the bundle is
                             self-contained
      metrics.jsonl, train_curves.png, tensorboard/ (event files,
      `ifvit_train.training.tensorboard`)

An exported bundle (`export_bundle`, `ifvit export`: what gets shipped) keeps bundle.json and the
weights only (`module1/`, and `module2/` for 'match'; no optimizer state, no data iterator):

    BUNDLE/bundle.json  ("exported_from": the source bundle's step and checkpoint hash)
    BUNDLE/module1/, BUNDLE/module2/

No pickle anywhere: JSON and Orbax (tensorstore/OCDBT) only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from ifvit_core.config import IFViTConfig, config_from_dict
from ifvit_core.ifvit import Matcher
from ifvit_core.loftr import LoFTR
from ifvit_data.outputs import atomic_write_text
from ifvit_train.serving.bundle_meta import (  # noqa: F401 (re-exported)
    BUNDLE_FILE,
    FORMAT,
    FORMAT_VERSION,
    KINDS,
    REQUIRED_KEYS,
    BundleError,
    read_meta,
)
from ifvit_train.serving.preprocessing import enhancement
from ifvit_train.serving.weights import load_run_weights, load_weights, save_weights


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("ifvit-core", "ifvit-data", "ifvit-train", "jax", "flax", "optax",
                 "orbax-checkpoint",
                 "grain"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Valid JSON (a NaN/Inf value becomes null) through the project's one atomic-write path."""
    atomic_write_text(path, json.dumps(_finite(data), indent=1, sort_keys=True,
                                       allow_nan=False) + "\n")


def state_hash(directory: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file of a checkpoint folder."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        h.update(f.relative_to(directory).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def build_models(cfg: IFViTConfig, kind: str, seed: int = 0) -> tuple[LoFTR, Matcher | None]:
    module1 = LoFTR(cfg.loftr, rngs=nnx.Rngs(seed))
    matcher = Matcher(cfg, rngs=nnx.Rngs(seed + 1)) if kind == "match" else None
    return module1, matcher


@dataclass
class LoadedBundle:
    """A bundle ready to run: models in eval mode and the config they were trained with.

    `cfg.loftr.fine.enabled` is False unless the bundle's fine stage was trained.
    """

    path: Path
    meta: dict[str, Any]
    cfg: IFViTConfig
    step: int
    module1: LoFTR
    matcher: Matcher | None

    @property
    def kind(self) -> str:
        return self.meta["kind"]


def _restore_model(model: nnx.Module, ckpt_dir: Path, step: int | None) -> int:
    """Loads the weights of a training run's checkpoint (not its optimizer state) into `model`."""
    step, w = load_run_weights(ckpt_dir, _weights_abstract(model), step)
    nnx.update(model, w["params"], w["batch_stats"])
    return step


def _weights_abstract(model: nnx.Module) -> Any:
    _, p, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                        {"params": p, "batch_stats": stats})


def _load_weights_into(model: nnx.Module, directory: Path) -> None:
    w = load_weights(directory, _weights_abstract(model))
    nnx.update(model, w["params"], w["batch_stats"])


def load_bundle(path: str | Path, require: str | None = None) -> LoadedBundle:
    """Loads a bundle's latest checkpoint into ready-to-run modules (eval mode).

    Args:
      path: the bundle folder.
      require: 'match' to refuse a Module 1 bundle where Module 2 is needed (or 'dense').

    Raises:
      BundleError: not a bundle, of the wrong kind, or without any checkpoint.
    """
    path = Path(path)
    meta = read_meta(path)
    if require == "match" and meta["kind"] != "match":
        raise BundleError(f"{path}: a Module 1 ('dense') bundle; this needs a Module 2 bundle "
                          "(`ifvit train match` or `ifvit train all` output)")
    try:
        cfg = config_from_dict(meta["config"])
        enhancement(meta.get("preprocessing", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{path / BUNDLE_FILE}: bad config ({e})") from None
    module1, matcher = build_models(cfg, meta["kind"])
    ckpt = path / "checkpoints"
    try:
        if "exported_from" in meta:
            _load_weights_into(module1, path / "module1")
            if matcher is not None:
                _load_weights_into(matcher, path / "module2")
            step = int(meta["step"])
        elif meta["kind"] == "dense":
            step = _restore_model(module1, ckpt, meta.get("step"))
        else:
            _load_weights_into(module1, path / "module1")
            step = _restore_model(matcher, ckpt, meta.get("step"))
    except FileNotFoundError as e:
        if meta.get("status") == "complete" or "exported_from" in meta:
            raise BundleError(f"{path}: its weights are missing ({e}); the bundle is damaged: "
                              "re-copy or re-export it (`ifvit export`), or retrain it") from None
        raise BundleError(f"{path}: no checkpoint yet; "
                          "let `ifvit train` run (it resumes)") from None
    except Exception as e:  # noqa: BLE001 - a truncated or foreign checkpoint, whatever Orbax says
        why = " ".join(str(e).split()).split(" See full")[0][:200]  # TensorStore adds a repr
        raise BundleError(f"{path}: its weights cannot be read ({type(e).__name__}: "
                          f"{why}); the bundle is damaged: re-copy or "
                          "re-export it (`ifvit export`), or retrain it") from None
    module1.eval()
    if matcher is not None:
        matcher.eval()
    return LoadedBundle(path, meta, cfg, step, module1, matcher)


def fine_trained(meta: dict[str, Any]) -> bool:
    """Whether a bundle's Module 1 fine stage was trained (then its config enables it)."""
    return meta.get("stages", {}).get("fine") == "trained"


def untrained(b: LoadedBundle) -> LoadedBundle:
    """The same Module 2 bundle before Module 2 training: the network `ifvit train match` started
    from (Module 1's trunk copied into both branches, embedding heads freshly initialised with the
    run's seed), with the same Module 1. The baseline every Module 2 number is compared with."""
    from ifvit_core.ifvit import init_from_module1

    if b.matcher is None:
        raise BundleError(f"{b.path}: a Module 1 bundle has no Module 2 to reset")
    matcher = Matcher(b.cfg, rngs=nnx.Rngs(int(b.meta["train"]["seed"]) + 1))
    init_from_module1(matcher, b.module1)
    matcher.eval()
    return dataclasses.replace(b, matcher=matcher, step=0,
                               meta={**b.meta, "thresholds": {}, "untrained": True})


def from_scratch(b: LoadedBundle) -> LoadedBundle:
    """The same Module 2 bundle before any training: Module 1 freshly initialised with the run's
    seed (as `ifvit train dense` starts it), Module 2 then initialised from it (`untrained`). The
    baseline of a run that trains both modules (`ifvit demo`)."""
    module1, _ = build_models(b.cfg, "dense", int(b.meta["train"]["seed"]))
    module1.eval()
    return untrained(dataclasses.replace(b, module1=module1))


PATH_KEYS = ("path", "shards", "data", "evaluation")  # provenance entries that name a folder


def portable(meta: Any) -> Any:
    """`meta` with every absolute folder path under a `PATH_KEYS` key reduced to the folder's
    name: a bundle that leaves the machine it was built on names its sources (with their hashes,
    kept beside them) without that machine's folder layout."""
    if isinstance(meta, dict):
        return {k: (Path(v).name if k in PATH_KEYS and isinstance(v, str) and Path(v).is_absolute()
                    else portable(v)) for k, v in meta.items()}
    if isinstance(meta, list):
        return [portable(v) for v in meta]
    return meta


def save_bundle_weights(dst: Path, module1: nnx.Module, matcher: nnx.Module | None) -> str:
    """Writes the weights-only folders of a bundle (parameters and BatchNorm statistics, no
    optimizer state): `dst/module1`, and `dst/module2` when `matcher` is given. Returns the
    `weights_sha256` of the main one (module2, else module1)."""
    def weights(m: nnx.Module) -> dict[str, Any]:
        return dict(zip(("params", "batch_stats"), nnx.split(m, nnx.Param, nnx.BatchStat)[1:],
                        strict=True))

    save_weights(dst / "module1", weights(module1))
    if matcher is not None:
        save_weights(dst / "module2", weights(matcher))
    return state_hash(dst / ("module2" if matcher is not None else "module1"))


def export_bundle(src: str | Path, dst: str | Path, recipe: str | None = None) -> dict[str, Any]:
    """Writes the weights-only copy of a finished bundle into the empty folder `dst`.

    The latest checkpoint's parameters and BatchNorm statistics (no optimizer state) go to
    `dst/module1` (and `dst/module2` for 'match'); bundle.json is copied with "exported_from"
    (and `recipe`, free text on how it was made, if given); absolute paths in it are reduced to
    folder names (`portable`).
    Returns the new bundle.json content. Raises BundleError for an unfinished or broken bundle.
    """
    src, dst = Path(src), Path(dst)
    b = load_bundle(src)
    if b.meta.get("status") != "complete":
        raise BundleError(f"{src}: training has not finished (status {b.meta.get('status')!r}); "
                          "let `ifvit train` complete first")
    digest = save_bundle_weights(dst, b.module1, b.matcher)
    meta = portable({**b.meta, "step": b.step,
                     "exported_from": {"path": str(src.resolve()), "step": b.step},
                     "weights_sha256": digest, **({"recipe": recipe} if recipe else {})})
    write_json_atomic(dst / BUNDLE_FILE, meta)
    return meta
