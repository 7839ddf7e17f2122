"""The two trainers as library calls: `train_dense` (Module 1) and `train_match` (Module 2).

Each is a short sequence of named stages — output folder -> data -> mesh + state -> validation ->
loop -> bundle — and writes a model bundle into its workdir (`ifvit_train.serving.bundle`).
Re-running the same call on the same workdir resumes exactly where the previous run stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from ifvit_core import params as params_lib
from ifvit_core.config import IFViTConfig, LossConfig
from ifvit_data.outputs import FolderLock, claim_output_dir
from ifvit_data.pipeline import make_iterator
from ifvit_train.evaluation.metrics import calibrate_threshold
from ifvit_train.serving import bundle as bundles
from ifvit_train.serving.mesh import make_mesh, shard_batch
from ifvit_train.serving.preprocessing import enhancement
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.data import dense_dataset, match_dataset, open_data, open_match_data
from ifvit_train.training.loop import LoopResult, run_loop
from ifvit_train.training.module1 import dense_batch_keys, init_dense_state, make_dense_step
from ifvit_train.training.module2 import MATCH_BATCH_KEYS, init_match_state, make_match_step
from ifvit_train.training.partition import group_counts
from ifvit_train.training.records import canonical_settings, new_meta, preprocessing
from ifvit_train.training.state import TrainState, merge_model, param_count
from ifvit_train.training.validate import (
    check_verification_split,
    registration_metrics,
    verification_metrics,
)

Log = Callable[[str], None]


def _check_resume(workdir: Path, meta: dict[str, Any], log: Log) -> dict[str, Any]:
    """Keeps an existing bundle.json of the same run; refuses a workdir holding another run.

    The data is compared by `manifest_sha256`: one folder's manifest hash, or for several folders
    a hash over their hashes and mix weights in order (another set, order or mix is refused)."""
    if not (workdir / bundles.BUNDLE_FILE).is_file():
        return meta
    old = bundles.read_meta(workdir)
    same = old.get("kind") == meta.get("kind")
    same &= canonical_settings(old) == canonical_settings(meta)
    same &= old.get("data", {}).get("manifest_sha256") == meta["data"]["manifest_sha256"]
    if not same:
        raise bundles.BundleError(
            f"{workdir}: holds another training run (different kind, model, settings or data); "
            "choose a new --workdir, or rerun with exactly the same command to resume")
    log(f"{workdir}: same run found, resuming")
    return old


def _log_model(log: Log, name: str, params: Any, state: Any) -> None:
    groups = ", ".join(f"{g} {n:,}" for g, n in group_counts(params).items())
    sh = jax.tree.leaves(state.params)[0].sharding
    log(f"{name}: {param_count(params):,} parameters ({groups}); parameters "
        f"{sh.spec or 'replicated'} on a {dict(sh.mesh.shape)} mesh, batch split over every axis")


def _finish(workdir: Path, meta: dict[str, Any], result: LoopResult,
            **extra: Any) -> dict[str, Any]:
    meta = {**meta, "status": "complete", "step": result.step, "validation": result.validation,
            "train_seconds": round(meta.get("train_seconds", 0.0) + result.seconds, 1), **extra}
    bundles.write_json_atomic(workdir / bundles.BUNDLE_FILE, meta)
    return meta


def start_point(path: str | Path, kind: str | None = None) -> tuple[bundles.LoadedBundle, dict]:
    """A trained bundle to start a run from (fine-tuning) and its bundle.json record
    {'path', 'step', 'state_sha256'}.

    kind: 'match' requires a Module 2 bundle. Raises BundleError."""
    b = bundles.load_bundle(path, require=kind)
    src = b.path / "checkpoints" / str(b.step)
    if not src.is_dir():  # an exported bundle: weights only
        src = b.path / ("module2" if b.matcher is not None else "module1")
    return b, {"path": str(b.path.resolve()), "step": b.step,
               "state_sha256": bundles.state_hash(src)}


def train_dense(data_dir: str | Path, workdir: str | Path, cfg: IFViTConfig, tc: TrainConfig, *,
                init_loftr: str | Path | None = None, init_from: str | Path | None = None,
                force: bool = False, log: Log = print, progress: bool = True,
                recipe: dict[str, str] | None = None) -> dict[str, Any]:
    """Trains Module 1 on corrupted-copy pairs of the training fingers; returns bundle.json.

    init_loftr: converted LoFTR weights to start from; init_from: a trained bundle (Module 1 or
    Module 2) whose Module 1 to start from (fine-tuning, e.g. on larger windows: its network must
    equal `cfg.loftr`). The workdir is claimed with the output-safety policy
    (`ifvit_data.outputs`) before any work: never the data folder, never a folder of the user's
    files unless `force`. recipe: the recipe and stage this run is (`recipes.Recipe.record`),
    recorded in bundle.json as `training_recipe`.
    """
    if init_loftr is not None and init_from is not None:
        raise ValueError("start from converted LoFTR weights or from a bundle, not both")
    data = open_data(data_dir, tc)  # reads only: a bad data folder leaves no workdir behind
    init_flat, started = None, None
    if init_from is not None:
        start, started = start_point(init_from)
        if dataclasses.replace(start.cfg.loftr, fine=cfg.loftr.fine) != cfg.loftr:
            raise bundles.BundleError(f"{init_from}: its Module 1 is another network than the "
                                      "preset's; give the preset it was trained with")
        init_flat = params_lib.flat_state(start.module1)
    inputs = [data_dir] + [p for p in (init_loftr, init_from) if p]
    workdir = claim_output_dir(workdir, "bundle-dense", inputs=inputs, force=force)
    lock = _lock_workdir(workdir)  # released when this function ends, even by an error
    try:
        mesh = make_mesh(tc.mesh_data, tc.mesh_fsdp)
        graphdef, state = init_dense_state(cfg, tc, mesh, init_loftr=init_loftr,
                                           init_flat=init_flat)
        _log_model(log, "Module 1", state.params, state)
        pre = preprocessing(cfg, tc)
        enh = enhancement(pre)
        meta = new_meta("dense", cfg, tc, data.summary(), pre, state.params,
                        fine_trained=tc.train_fine,
                        init_loftr=str(init_loftr) if init_loftr else None,
                        **({"init_from": started} if started else {}),
                        **({"training_recipe": recipe} if recipe else {}))
        meta = _check_resume(workdir, meta, log)
        val_it = make_iterator(dense_dataset(data.heldout, tc, cfg.image_size, seed=tc.seed + 1))
        val_batches = [next(val_it) for _ in range(max(1, tc.val_pairs // tc.batch_size))]
        reg = registration_metrics(cfg, val_batches, fine=tc.train_fine, enhance=enh)
        def validate(s: TrainState) -> dict[str, float]:
            return reg(merge_model(graphdef, s.params, s.batch_stats, train=False))

        if "initial_validation" not in meta:
            meta["initial_validation"] = validate(state)
            bundles.write_json_atomic(workdir / bundles.BUNDLE_FILE, meta)
        step = make_dense_step(graphdef, cfg, tc, mesh, enhance=enh)
        result = run_loop(
            workdir, state, step,
            _batches(dense_dataset, data.train, tc, cfg.image_size, seed=tc.seed,
                     correspondence=data.correspondence),
            lambda b: shard_batch({k: b[k] for k in dense_batch_keys(tc)}, mesh),
            tc.steps * tc.accum_steps, tc, validate=validate,
            initial_validation=meta["initial_validation"], desc="train Module 1", log=log,
            progress=progress)
        return _finish(workdir, meta, result)
    finally:
        if lock is not None:
            lock.release()


def _lock_workdir(workdir: Path) -> FolderLock | None:
    """One trainer per workdir: process 0 of a run locks it (the other processes of the same
    multi-process run write it with process 0); a second `ifvit train` on it is refused."""
    return FolderLock(workdir, "training workdir") if jax.process_index() == 0 else None


def _batches(make_ds: Callable, *args: Any, **kw: Any) -> Callable[[dict | None], Any]:
    """`iterator state -> Grain iterator` over this process's slice of the global batch."""

    def make(state: dict | None):
        ds = make_ds(*args, **kw, shard_index=jax.process_index(), shard_count=jax.process_count())
        it = make_iterator(ds)
        if state is not None:
            it.set_state(state)
        return it

    return make


def _check_match_data(data: Any, data_dir: Any, tc: TrainConfig) -> None:
    if data.num_classes < 2:
        raise ValueError(f"{data_dir}: Module 2 needs at least 2 training fingers")
    check_verification_split(data.heldout, tc.val_prints)


DataDirs = str | Path | Sequence[str | Path]


def check_match_data(data_dir: DataDirs, tc: TrainConfig,
                     mix: Sequence[float] | None = None) -> None:
    """Raises ValueError when Module 2 cannot train on this data with these settings.

    `train_match` checks the same before it writes anything; call this first to refuse a
    Module 1 + Module 2 run before Module 1's training time is spent.
    """
    _check_match_data(open_match_data(data_dir, tc, mix), data_dir, tc)


def _module1_weights(b: bundles.LoadedBundle) -> Path:
    """The folder a bundle's Module 1 was loaded from (`load_bundle`)."""
    if b.kind == "match" or "exported_from" in b.meta:
        return b.path / "module1"
    return b.path / "checkpoints" / str(b.step)


def _replicate_on(module: nnx.Module, mesh: jax.sharding.Mesh) -> None:
    """Puts a loaded module's weights on every device of `mesh` (replicated) unless they are on
    them already: an exported bundle's weights load onto one device, Module 2's state lives on
    the mesh, and validation runs both in one jitted call."""
    leaves = jax.tree.leaves(nnx.state(module))
    if all(leaf.sharding.device_set == set(mesh.devices.flat) for leaf in leaves):
        return
    rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    nnx.update(module, jax.device_put(nnx.state(module), rep))


def train_match(data_dir: DataDirs, workdir: str | Path, from_dense: str | Path, tc: TrainConfig,
                *, loss: LossConfig | None = None, init_from: str | Path | None = None,
                mix: Sequence[float] | None = None, force: bool = False, log: Log = print,
                progress: bool = True, recipe: dict[str, str] | None = None) -> dict[str, Any]:
    """Trains Module 2 from a bundle's Module 1; returns the Module 2 bundle.json.

    `data_dir`: one shard folder, or several trained together (`data.open_match_data`): each
    split by finger on its own, its training fingers ArcFace classes of their own, each pair drawn
    from folder f with probability `mix[f]` (normalised; default: proportional to the folders'
    training records), validation on every folder's held-out fingers.
    `from_dense`: a Module 1 bundle, or a Module 2 bundle (e.g. the shipped, exported one) whose
    Module 1 is then used; `from_dense.state_sha256` hashes the weights folder it was loaded from.
    `loss` replaces the Module 1 bundle's loss settings (λ weights, ArcFace s/m, L_E margin).
    `init_from`: a Module 2 bundle whose branches to start from instead of Module 1's trunk
    (fine-tuning, e.g. on real prints or larger windows; ArcFace class centres are kept only when
    the number of training fingers is the same). `recipe`: as `train_dense`.
    """
    dense = bundles.load_bundle(from_dense, require=None)
    # Module 2 sees its inputs exactly as Module 1 was trained to (one preprocessing path)
    enh = enhancement(dense.meta["preprocessing"])
    tc = tc.replace(input_downscale=float(dense.meta["preprocessing"].get("downscale", 1.0)),
                    enhance=enh is not None)
    data = open_match_data(data_dir, tc, mix)
    _check_match_data(data, data_dir, tc)
    start, started = start_point(init_from, "match") if init_from is not None else (None, None)
    if start is not None and start.cfg.module2.template_neck:
        log(f"note: {init_from} has a template neck (fitted by `ifvit whiten` to its own "
            "embeddings); training changes the embeddings and this run's bundle has none: refit "
            "it afterwards with `ifvit whiten --templates-only`")
    dirs = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    inputs = [*dirs, from_dense] + ([init_from] if init_from else [])
    workdir = claim_output_dir(workdir, "bundle-match", inputs=inputs, force=force)
    lock = _lock_workdir(workdir)  # released when this function ends, even by an error
    try:
        cfg = dense.cfg.replace(module2=dataclasses.replace(dense.cfg.module2,
                                                            num_classes=data.num_classes),
                                loss=loss or dense.cfg.loss)
        mesh = make_mesh(tc.mesh_data, tc.mesh_fsdp)
        _replicate_on(dense.module1, mesh)
        graphdef, state, transfer = init_match_state(cfg, tc, mesh, dense.module1, log=log,
                                                     init_matcher=start.matcher if start else None)
        _log_model(log, "Module 2", state.params, state)
        m1_graphdef, m1_params, m1_stats = nnx.split(dense.module1, nnx.Param, nnx.BatchStat)
        if not (workdir / "module1").exists():
            bundles_save_module1(workdir, m1_params, m1_stats)
        dense_hash = bundles.state_hash(_module1_weights(dense))
        of_match = {"kind": "match"} if dense.kind == "match" else {}  # its Module 1 only
        meta = new_meta("match", cfg, tc, data.summary(), dense.meta["preprocessing"],
                        state.params, fine_trained=bundles.fine_trained(dense.meta),
                        from_dense={"path": str(Path(from_dense).resolve()),
                                    "step": dense.step, "state_sha256": dense_hash,
                                    **of_match, **transfer},
                        **({"init_from": started} if started else {}),
                        **({"training_recipe": recipe} if recipe else {}))
        meta = _check_resume(workdir, meta, log)
        ver = verification_metrics(cfg, dense.module1, data.heldout, cfg.image_size, tc.val_prints,
                                   downscale=tc.input_downscale, enhance=enh)
        def validate(s: TrainState) -> dict[str, float]:
            return ver(merge_model(graphdef, s.params, s.batch_stats, train=False))

        if "initial_validation" not in meta:
            meta["initial_validation"] = validate(state)
            bundles.write_json_atomic(workdir / bundles.BUNDLE_FILE, meta)
        step = make_match_step(graphdef, m1_graphdef, cfg, tc, mesh, enhance=enh)
        m1_vars = jax.device_put((m1_params, m1_stats), jax.sharding.NamedSharding(
            mesh, jax.sharding.PartitionSpec()))
        result = run_loop(
            workdir, state, lambda s, b: step(s, m1_vars, b),
            _batches(match_dataset, data, tc, cfg.image_size),
            lambda b: shard_batch({k: b[k] for k in MATCH_BATCH_KEYS}, mesh),
            tc.steps * tc.accum_steps, tc, validate=validate,
            initial_validation=meta["initial_validation"], desc="train Module 2", log=log,
            progress=progress)
        _, impostor = ver.scores(merge_model(graphdef, result.state.params,
                                             result.state.batch_stats, train=False))
        thresholds = {f"fmr_{f:g}": calibrate_threshold(impostor, f) for f in (1e-2, 1e-3, 1e-4)}
        return _finish(workdir, meta, result, thresholds={
            **thresholds, "calibrated_on": f"{len(impostor)} impostor pairs of the held-out "
            "fingers (too few for FMR below 1/pairs: such thresholds reject every impostor seen)"})
    finally:
        if lock is not None:
            lock.release()


def bundles_save_module1(workdir: Path, m1_params: Any, m1_stats: Any) -> None:
    from ifvit_train.serving.weights import save_weights

    save_weights(workdir / "module1", {"params": m1_params, "batch_stats": m1_stats})
