"""`ifvit evaluate`: FVC verification metrics of a model bundle on a folder of prints."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_cli.model import add_model_argument, load_model
from ifvit_cli.model import model_path as bundle_path

HELP = "FVC metrics (EER, FMR100, FMR1000, ZeroFMR, DET/ROC) of a model on a folder of prints"
DESCRIPTION = """\
Score every pair of a verification protocol on a folder of prints and report the FVC indicators.

Protocols: fvc (FVC2000-2004: genuine = every pair of impressions of a finger, impostor = the first
impressions of two different fingers; a 10x8 set gives 280 / 45 pairs, 100x8 gives 2,800 / 4,950),
all-pairs (every unordered pair; IFViT's protocol) and baselines (every genuine pair and 2,000
cross-finger impostor pairs drawn with numpy.random.default_rng(0): the protocol of the project's
classical Bozorth3 / afis figures, data/BASELINES.md, so the numbers compare one to one), and
identification (closed-set 1:N: the first impression of each finger is the gallery, every other
print a probe; rank-1 / rank-10 and a CMC curve, by template cosine alone and with the top --rerank
candidates re-scored by the pairwise IFViT score, as `ifvit identify` does). Each
print is prepared once exactly as in training; a print that cannot be read counts as a failure to
process, and a print below the quality floor (`ifvit_data.quality`: blank, uniform, noise, not a
fingerprint) as a failure to acquire: their pairs get the lowest score, as in FVC, and the report
counts them (prints_failed, prints_failed_to_acquire; scores.csv has each print's quality).

Writes into --out: report.json (EER, FMR100, FMR1000, ZeroFMR, TAR@FAR 0.1% / 0.01%, failures,
seconds per pair, for IFViT's fused score and, from the same run, each Module 2 branch alone and
Module 1 alone (RANSAC inliers)), scores.csv (one row per pair), det.png, roc.png, histogram.png.
Files are written atomically; --out must be new, empty, or an earlier evaluate output."""
EPILOG = """\
examples:
  ifvit evaluate --data FVC2002/DB1_B --layout fvc --out eval/db1     # the shipped model
  ifvit evaluate --model runs/m/match --data FVC2002/DB1_B --protocol all-pairs --out eval/db1-all
  ifvit evaluate --model runs/m/match --data scans/ --layout folder --dpi 1000 --out eval/scans
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p)
    p.add_argument("--data", type=Path, required=True, help="folder of prints")
    p.add_argument("--layout", default="fvc",
                   choices=["fvc", "nist-sd4", "nist-sd300", "nist-sd301", "nist-sd302", "folder"],
                   help="file naming convention (default: fvc, e.g. 101_1.tif)")
    p.add_argument("--protocol", default="fvc", choices=["fvc", "all-pairs", "baselines",
                                                         "identification"],
                   help="pairs to score (default: fvc)")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--dpi", type=float, default=None,
                   help="resolution of every print (default: file metadata or name, else 500)")
    p.add_argument("--untrained", action="store_true",
                   help="score with the network Module 2 training started from (Module "
                        "1's trunk in both branches, fresh heads): the baseline the trained "
                        "model must beat")
    p.add_argument("--rerank", type=int, default=10,
                   help="identification: candidates re-scored with the pairwise score "
                        "(default: 10)")
    p.add_argument("--batch", type=int, default=8, help="pairs per compiled call (default: 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out that is not an evaluate output (no "
                        "file deleted)")


def run(args: argparse.Namespace) -> int:
    from ifvit_data.outputs import (
        OutputError,
        atomic_write_text,
        check_output_dir,
        claim_output_dir,
    )
    from ifvit_data.readers import DatasetError, scan

    if args.batch < 1 or args.rerank < 0:
        raise UserError(f"--batch {args.batch} / --rerank {args.rerank}: give positive numbers")
    ident = args.protocol == "identification"
    if not args.data.is_dir():
        raise UserError(f"--data {args.data}: not a folder; pass the folder that holds the prints")
    from ifvit_data.protocol import protocol_pairs

    try:  # the folder and the protocol are checked before any output exists
        entries, _ = scan(args.data, args.layout)
        pairs, genuine = protocol_pairs(entries, "all-pairs" if ident else args.protocol)
    except DatasetError as e:
        raise UserError(str(e)) from None
    if not genuine.any() or genuine.all():
        raise UserError(f"--data {args.data}: {len(entries)} {args.layout}-layout prints; the "
                        f"{args.protocol} protocol needs two fingers and two impressions "
                        "of one finger")
    src = bundle_path(args.model)
    try:  # refused before the model loads
        check_output_dir(args.out, "evaluation", inputs=[args.data, src], force=args.force)
    except OutputError as e:
        raise UserError(str(e)) from None
    from ifvit_train.evaluation import evaluate as ev  # jax: imported after every quick refusal

    verifier, model_path = load_model(src, untrained=args.untrained)
    try:
        claim_output_dir(args.out, "evaluation", inputs=[args.data, model_path],
                         force=args.force)
    except OutputError as e:
        raise UserError(str(e)) from None
    from tqdm import tqdm

    with tqdm(total=len(entries), desc="prepare", unit="print", disable=args.quiet) as bar:
        prints = ev.load_prints(verifier, args.data, args.layout, dpi=args.dpi, progress=bar.update)
    if ident:
        return _identification(args, verifier, prints, model_path)
    with tqdm(total=len(pairs), desc="score", unit="pair", disable=args.quiet) as bar:
        pairs, genuine, scores, report = ev.evaluate_prints(
            verifier, prints, args.protocol, args.batch, progress=bar.update,
            model=str(model_path), model_step=verifier.bundle.step, untrained=args.untrained,
            data=str(args.data), layout=args.layout)
    names = [e.rel for e in prints.entries]
    n0 = [names[i] for i in pairs[:, 0]]
    n1 = [names[j] for j in pairs[:, 1]]
    atomic_write_text(args.out / "scores.csv", ev.scores_csv(n0, n1, scores, genuine))
    ev.write_plots(args.out, scores, genuine, verifier.thresholds, title=args.data.name)
    atomic_write_text(args.out / "report.json", json.dumps(report, indent=1,
                                                           allow_nan=False) + "\n")
    r = report["pairs"]
    print(f"{args.data}: {len(names)} prints, {r['genuine']} genuine + {r['impostor']} "
          f"impostor pairs ({args.protocol}), {r['failed']} failed; "
          f"{report['seconds_per_pair'] * 1e3:.0f} ms per pair")
    if prints.failures:
        print(f"{len(prints.failures)} prints failed ({len(prints.not_acquired)} not acquired as "
              f"fingerprints), e.g. {next(iter(prints.failures.values()))}")
    print(f"{'system':<8} {'EER':>7} {'FMR100':>7} {'FMR1000':>8} {'ZeroFMR':>8}")
    for name, s in report["systems"].items():
        print(f"{name:<8} {s['eer']:>7.2%} {s['fmr100']:>7.2%} {s['fmr1000']:>8.2%} "
              f"{s['zerofmr']:>8.2%}")
    print(f"report {args.out / 'report.json'}, scores.csv, det.png, roc.png, histogram.png")
    return 0


def _identification(args: argparse.Namespace, verifier, prints, model_path: Path) -> int:
    import json

    from ifvit_data.outputs import atomic_write_text
    from ifvit_train.evaluation.identification import identification
    from ifvit_train.evaluation.plots import plot_cmc

    try:
        report, curves = identification(verifier.bundle, prints, rerank=args.rerank,
                                        batch_size=args.batch)
    except ValueError as e:
        raise UserError(f"--data {e}") from None
    report = {"model": str(model_path), "model_step": verifier.bundle.step, "data": str(args.data),
              "untrained": args.untrained, **report}
    plot_cmc(curves, args.out / "cmc.png", title=f"CMC {args.data.name}")
    atomic_write_text(args.out / "report.json", json.dumps(report, indent=1,
                                                           allow_nan=False) + "\n")
    print(f"{args.data}: gallery {report['gallery']} prints (first impressions), "
          f"{report['probes']} probes; {report['seconds_per_template'] * 1e3:.0f} ms per template")
    for name in curves:
        r = report[name]
        print(f"{name:<10} rank-1 {r['rank1']:.1%}  rank-10 {r.get('rank10', float('nan')):.1%}")
    if (tv := report.get("template_verification")) is not None:
        print(f"templates as a 1:1 score ({tv['n_genuine']} genuine / {tv['n_impostor']} impostor "
              f"pairs): EER {tv['eer']:.2%}, FMR100 {tv['fmr100']:.2%}")
    print(f"report {args.out / 'report.json'}, cmc.png")
    return 0
