"""`ifvit identify`: 1:N search of probe prints in a gallery made by `ifvit enroll`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_cli.model import add_model_argument, model_path

HELP = "1:N search: the gallery prints most similar to each probe"
DESCRIPTION = """\
Search a gallery (`ifvit enroll` output) for each probe print: the probe's template is compared
with every gallery template by cosine (exact top-k, on device), then the first --rerank candidates
are re-scored with the full pairwise IFViT model (Module 1 alignment + Module 2, as `ifvit match`)
against their enrolled files and re-ordered by that score. The gallery must have been enrolled
with the same model (its hash is checked), its templates file must be the one enrolled (SHA-256)
and finite. A probe below the quality floor (`ifvit_data.quality`: not a fingerprint) is refused.
--shard splits the gallery rows over every device."""
EPILOG = """examples:
  ifvit identify --model runs/m/match --gallery gallery/ probe.png
  ifvit identify --model runs/m/match --gallery gallery/ a.png b.png --top-k 20 --rerank 5 --json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("probes", type=Path, nargs="+", metavar="PROBE", help="probe print(s)")
    add_model_argument(p)
    p.add_argument("--gallery", type=Path, required=True,
                   help="gallery folder (`ifvit enroll` output)")
    p.add_argument("--top-k", type=int, default=10, help="candidates per probe (default 10)")
    p.add_argument("--rerank", type=int, default=None,
                   help="re-score the first K candidates with the pairwise model (default: all "
                   "top-k; 0: template scores only)")
    p.add_argument("--dpi", type=float, default=None,
                   help="resolution of the probes (default: metadata, else 500)")
    p.add_argument("--shard", action="store_true", help="split the gallery rows over every device")
    p.add_argument("--json", action="store_true", help="print the candidates as JSON")


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise UserError(f"--top-k {args.top_k}: must be at least 1")
    rerank = args.top_k if args.rerank is None else args.rerank
    if rerank < 0:
        raise UserError(f"--rerank {args.rerank}: must be 0 or more")
    if args.dpi is not None:
        from ifvit_data.imagefile import check_dpi

        if (reason := check_dpi(args.dpi, "--dpi")) is not None:
            raise UserError(f"{reason}; give the probes' scan resolution, e.g. --dpi 500")
    from ifvit_data.imagefile import image_file_problem

    for p in args.probes:
        if (problem := image_file_problem(p)) is not None:
            raise UserError(f"{p}: {problem}")
    from ifvit_data.imagefile import ImageReadError
    from ifvit_train.serving.bundle_meta import BundleError, read_meta
    from ifvit_train.serving.gallery_file import GalleryError, load_gallery  # no jax
    from ifvit_train.serving.prepare import prepare_for_bundle

    try:
        load_gallery(args.gallery)  # format checks before the model is loaded
        args.model = model_path(args.model)
        meta = read_meta(args.model)
        # the probes too (unreadable, not a fingerprint): every refusal before the model loads
        probes = [prepare_for_bundle(meta, p, args.dpi) for p in args.probes]
        from ifvit_train.serving.bundle import load_bundle
        from ifvit_train.serving.identify import Identifier

        bundle = load_bundle(args.model, require="match")
        mesh = None
        if args.shard:
            from ifvit_train.serving.mesh import make_mesh

            mesh = make_mesh()
        ident = Identifier(bundle, args.gallery, mesh=mesh)
        results = ident.identify(probes, k=args.top_k, rerank=rerank)
    except (BundleError, GalleryError, ImageReadError, ValueError) as e:
        raise UserError(str(e)) from None
    except (KeyError, TypeError) as e:
        raise UserError(f"{args.model / 'bundle.json'}: bad preprocessing record ({e!r}); the "
                        "bundle is damaged: re-copy or re-export it (`ifvit export`)") from None
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for res in results:
        print(f"{res['probe']}:")
        for c in res["candidates"]:
            pair = f"score {c['score']:.4f}  " if c["score"] is not None else ""
            print(f"  {c['rank']:>3}. {c['subject']} (impression {c['impression']})  {pair}"
                  f"template {c['template_score']:.4f}  {c['path']}")
    return 0
