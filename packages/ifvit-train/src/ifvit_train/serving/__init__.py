"""Serving: a bundle loaded for use, without training code.

bundle_meta (bundle.json, no jax), bundle (weights into models, export), weights (Orbax weight
folders), prepare + preprocessing (the one path from an image file to model inputs), infer
(`Verifier`, `Embedder`), pairs (scoring a pair list, scores.csv), gallery + search + identify
(1:N), match_picture, summary (`ifvit inspect`), shipped (the model inside this package),
compile_cache, mesh (device meshes, also used by the trainers).
"""
