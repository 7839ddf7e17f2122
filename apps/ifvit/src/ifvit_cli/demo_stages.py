"""The stages of `ifvit demo`: data, Module 1 training, held-out evaluation (JAX imported here)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class Subset:
    """A random-access view of some records of a source (the train / held-out split)."""

    def __init__(self, source: Any, indices: list[int]):
        self.source, self.indices = source, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict[str, Any]:
        return self.source[self.indices[k]]


@dataclass
class DemoData:
    source: Any  # RecordSource over all shards
    train_idx: list[int]
    heldout_idx: list[int]
    summary: dict[str, Any]


@dataclass
class TrainedModule1:
    graphdef: Any
    state: Any
    cfg: Any
    summary: dict[str, Any]


def make_data(args: argparse.Namespace, out: Path) -> DemoData:
    from PIL import Image
    from tqdm import tqdm

    from ifvit_data.ingest import ingest
    from ifvit_data.shards import RecordSource
    from ifvit_data.synth import SynthConfig, contact_sheet, generate_dataset

    synth_dir, shard_dir = out / "synth", out / "shards"
    n = args.fingers * args.impressions
    with tqdm(total=n, desc="synth", unit="print") as bar:
        generate_dataset(synth_dir, args.fingers, args.impressions, args.seed, SynthConfig(),
                         progress=lambda done, _total: bar.update(done - bar.n))
    # Contact sheet: the first 4 fingers x up to 4 impressions, as written on disk.
    cols = min(args.impressions, 4)
    shown = [synth_dir / f"{f}_{i}.png" for f in range(1, min(args.fingers, 4) + 1)
             for i in range(1, cols + 1)]
    sheet = out / "synthetic_prints.png"
    contact_sheet([np.asarray(Image.open(p).convert("L")) for p in shown], cols, sheet)
    with tqdm(total=n, desc="ingest", unit="print", leave=False) as bar:
        result, _ = ingest(synth_dir, "fvc", shard_dir, on_record=lambda _r: bar.update(1))
    if result.reused:
        print(f"shards in {shard_dir} are up to date (same prints): reused", flush=True)
    source = RecordSource(shard_dir)
    fingers = np.array([source[i]["finger"] for i in range(len(source))])
    uniq = np.unique(fingers)
    n_hold = max(1, int(round(args.holdout * len(uniq))))
    held = set(uniq[-n_hold:].tolist())
    train_idx = [i for i, f in enumerate(fingers) if f not in held]
    held_idx = [i for i, f in enumerate(fingers) if f in held]
    manifest = result.manifest
    summary = {
        "fingers": int(len(uniq)),
        "impressions": args.impressions,
        "records": len(source),
        "shards": len(manifest.get("shards", [])),
        "train_fingers": int(len(uniq) - n_hold),
        "heldout_fingers": n_hold,
        "contact_sheet": sheet.name,
    }
    return DemoData(source, train_idx, held_idx, summary)


def _pair_config(args: argparse.Namespace, size: int):
    from ifvit_data.augment.corrupt import CorruptionConfig
    from ifvit_data.augment.geometric import RotationConfig
    from ifvit_data.pipeline import Module1Config
    from ifvit_data.preprocess import CropConfig

    return Module1Config(
        crop=CropConfig(size=(size, size), downscale=1.0, jitter=16.0),
        corruption=CorruptionConfig(rotation=RotationConfig(max_angle=args.max_rotation,
                                                            max_translation=args.max_translation)),
    )


def train_module1(args: argparse.Namespace, out: Path, data: DemoData) -> TrainedModule1:
    import time

    import jax
    from tqdm import tqdm

    from ifvit_cli.viz import plot_curves
    from ifvit_core import config
    from ifvit_data.pipeline import make_iterator, module1_dataset
    from ifvit_train.dense import DenseTrainConfig, init_dense_state, make_dense_step
    from ifvit_train.mesh import make_mesh, shard_batch

    cfg = config.get_preset(args.preset)
    n_dev = jax.device_count()
    batch = max(n_dev, (args.batch // n_dev) * n_dev)
    mesh = make_mesh()
    tc = DenseTrainConfig(learning_rate=args.lr, warmup_steps=min(50, args.steps // 5 + 1),
                          total_steps=args.steps)
    graphdef, state = init_dense_state(cfg, tc, mesh, seed=args.seed)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    ds = module1_dataset(Subset(data.source, data.train_idx), _pair_config(args, cfg.image_size),
                         seed=args.seed, batch_size=batch, num_epochs=None)
    it = make_iterator(ds)
    curves: dict[str, list[float]] = {"L_D": [], "precision": [], "recall": []}
    t0 = time.time()
    with tqdm(total=args.steps, desc="train Module 1", unit="step") as bar:
        for _ in range(args.steps):
            b = next(it)
            state, m = step(state, shard_batch({k: b[k] for k in
                                                ("image0", "image1", "gt_i", "gt_j", "gt_valid")}, mesh))
            m = jax.device_get(m)
            curves["L_D"].append(float(m["loss"]))
            curves["precision"].append(float(m["precision"]))
            curves["recall"].append(float(m["recall"]))
            bar.set_postfix(L_D=f"{m['loss']:.3f}", prec=f"{m['precision']:.2f}")
            bar.update(1)
    seconds = time.time() - t0
    plot_curves(curves, out / "train_curves.png")
    k = min(10, len(curves["L_D"]))
    n_params = int(sum(np.prod(x.shape) for x in jax.tree.leaves(state.params)))
    summary = {
        "preset": args.preset, "params": n_params, "steps": args.steps, "batch": batch,
        "devices": n_dev, "seconds": seconds, "pairs_per_s": args.steps * batch / seconds,
        "loss_first": float(np.mean(curves["L_D"][:k])), "loss_last": float(np.mean(curves["L_D"][-k:])),
        "curves": "train_curves.png",
    }
    return TrainedModule1(graphdef, state, cfg, summary)


def evaluate_module1(args: argparse.Namespace, out: Path, data: DemoData,
                     trained: TrainedModule1) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from ifvit_cli.viz import plot_matches
    from ifvit_core import geometry
    from ifvit_core.loftr import LoFTR
    from ifvit_data.pipeline import make_iterator, module1_dataset
    from ifvit_train.dense import dense_metrics, dense_model

    cfg = trained.cfg
    ds = module1_dataset(Subset(data.source, data.heldout_idx), _pair_config(args, cfg.image_size),
                         seed=args.seed + 1, batch_size=8, num_epochs=None)
    it = make_iterator(ds)
    n_batches = max(1, args.eval_pairs // 8)
    batches = [next(it) for _ in range(n_batches)]

    @nnx.jit
    def forward(model, b):
        o = model(b["image0"], b["image1"], fine=False)
        fit = geometry.ransac_similarity(jax.random.key(0), o["mkpts0_c"], o["mkpts1_c"], o["valid"],
                                         weights=o["mconf"], threshold=cfg.ransac_threshold,
                                         num_iters=cfg.ransac_iters)
        return {"valid": o["valid"], "j_ids": o["j_ids"], "mconf": o["mconf"],
                "mkpts0_c": o["mkpts0_c"], "mkpts1_c": o["mkpts1_c"], "A": fit.A, "ok": fit.ok}

    def run(model):
        res, mets = [], []
        for b in batches:
            jb = {k: jnp.asarray(v) for k, v in b.items()}
            o = jax.device_get(forward(model, jb))
            res.append(o)
            mets.append(jax.device_get(dense_metrics(o, b)))
        return res, mets

    untrained = LoFTR(cfg.loftr, rngs=nnx.Rngs(args.seed))
    untrained.eval()
    _, mets_u = run(untrained)
    res, mets = run(dense_model(trained.graphdef, trained.state))

    size = cfg.image_size
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float32)
    rot_err, corner_err = [], []
    for o, b in zip(res, batches):
        for A_est, A_true in zip(o["A"], b["transform"]):
            ang = lambda A: np.degrees(np.arctan2(A[1, 0], A[0, 0]))
            rot_err.append(abs((ang(A_est) - ang(A_true) + 180) % 360 - 180))
            pe = corners @ A_est[:, :2].T + A_est[:, 2]
            pt = corners @ A_true[:, :2].T + A_true[:, 2]
            corner_err.append(float(np.linalg.norm(pe - pt, axis=1).mean()))

    # Visualise the first held-out pair: lines coloured by confidence, wrong matches red.
    b0, o0 = batches[0], res[0]
    v = o0["valid"][0]
    gt = dict(zip(b0["gt_i"][0][b0["gt_valid"][0]].tolist(), b0["gt_j"][0][b0["gt_valid"][0]].tolist()))
    i_ids = np.flatnonzero(v)
    correct = np.array([gt.get(int(i), -1) == int(o0["j_ids"][0][i]) for i in i_ids])
    viz = plot_matches(b0["image0"][0], b0["image1"][0], o0["mkpts0_c"][0][v], o0["mkpts1_c"][0][v],
                       o0["mconf"][0][v], out / "matches.png", correct=correct,
                       title="Module 1 on a held-out pair")
    mean = lambda ms, k: float(np.mean([m[k] for m in ms]))
    return {
        "pairs": n_batches * 8,
        "precision": mean(mets, "precision"), "recall": mean(mets, "recall"),
        "matches_per_pair": mean(mets, "matches_per_pair"),
        "untrained_precision": mean(mets_u, "precision"), "untrained_recall": mean(mets_u, "recall"),
        "rotation_error_deg_median": float(np.median(rot_err)),
        "corner_error_px_median": float(np.median(corner_err)),
        "aligned_fraction": float(np.mean(np.asarray(corner_err) < 8.0)),
        "viz": viz.name,
    }


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """EER of similarity scores (higher = more similar) and its threshold.

    Sweeps every observed score as a threshold t (accept if score >= t); FAR(t) is the impostor
    fraction accepted, FRR(t) the genuine fraction rejected; returns the mean of FAR and FRR where
    they are closest (exact for the empirical curves, no interpolation).
    """
    genuine, impostor = np.sort(np.asarray(genuine, float)), np.sort(np.asarray(impostor, float))
    thresholds = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    far = 1.0 - np.searchsorted(impostor, thresholds, side="left") / len(impostor)
    frr = np.searchsorted(genuine, thresholds, side="left") / len(genuine)
    k = int(np.argmin(np.abs(far - frr)))
    return float((far[k] + frr[k]) / 2), float(thresholds[k])


def verify_baseline(args: argparse.Namespace, out: Path, data: DemoData,
                    trained: TrainedModule1) -> dict[str, Any]:
    """Module-1-only verification baselines on held-out fingers.

    Two scores per pair: the summed confidence of the mutual matches, and the number of RANSAC
    inliers of a similarity fit to them (geometric consistency, the classical evidence). All pairs
    of the held-out prints (IFViT's own evaluation protocol); genuine = same finger. These are not
    IFViT's Module 2 score (not built yet): they show how much identity evidence the dense
    correspondences alone carry.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from ifvit_cli.viz import plot_score_histograms
    from ifvit_core import geometry
    from ifvit_data.pipeline import eval_dataset
    from ifvit_data.preprocess import CropConfig
    from ifvit_data.protocol import all_pairs
    from ifvit_train.dense import dense_model

    size = trained.cfg.image_size
    held = Subset(data.source, data.heldout_idx)
    fingers = np.array([held[i]["finger"] for i in range(len(held))])
    pairs, is_genuine = all_pairs(fingers)
    if not (is_genuine == 1).any() or not (is_genuine == 0).any():
        return {"skipped": "needs at least 2 held-out fingers with 2 impressions each "
                           "(raise --fingers or --holdout)"}
    ds = eval_dataset(held, pairs, is_genuine, CropConfig(size=(size, size)), batch_size=8)
    model = dense_model(trained.graphdef, trained.state)

    cfg = trained.cfg

    @nnx.jit
    def score(m, a, b):
        o = m(a, b, fine=False)
        fit = geometry.ransac_similarity(jax.random.key(0), o["mkpts0_c"], o["mkpts1_c"], o["valid"],
                                         weights=o["mconf"], threshold=cfg.ransac_threshold,
                                         num_iters=cfg.ransac_iters)
        # mconf is 0 where not a valid match
        return jnp.stack([jnp.sum(o["mconf"], axis=1), fit.num_inliers.astype(jnp.float32)], 1)

    scores = []
    for k in range(len(ds)):
        b = ds[k]
        n = len(b["is_genuine"])
        pad = lambda x: np.concatenate([x, np.repeat(x[-1:], 8 - n, axis=0)]) if n < 8 else x
        s = jax.device_get(score(model, jnp.asarray(pad(b["image0"])), jnp.asarray(pad(b["image1"]))))
        scores.append(np.asarray(s)[:n])
    scores = np.concatenate(scores)  # [P, 2]
    result: dict[str, Any] = {"genuine_pairs": int(np.sum(is_genuine == 1)),
                              "impostor_pairs": int(np.sum(is_genuine == 0))}
    for col, name in enumerate(("confidence", "inliers")):
        gen, imp = scores[is_genuine == 1, col], scores[is_genuine == 0, col]
        eer, thr = equal_error_rate(gen, imp)
        result[name] = {"eer": eer, "threshold": thr, "genuine_mean": float(gen.mean()),
                        "impostor_mean": float(imp.mean())}
    gen, imp = scores[is_genuine == 1, 1], scores[is_genuine == 0, 1]
    hist = plot_score_histograms(
        gen, imp, out / "scores.png",
        title=f"Module 1 RANSAC-inlier score, held-out pairs (EER {100 * result['inliers']['eer']:.1f}%)")
    result["plot"] = hist.name
    return result
