"""The `cuda12` and `tpu` extras resolve in the lock: for every jax the lock pins (one per Python
range), the GPU extra brings the CUDA plugin of that same jax version and the TPU extra brings
libtpu, each with a Linux x86_64 wheel. (No accelerator is available in CI: this checks what
`uv sync --extra cuda12|tpu` would install, not that it runs.)"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _lock() -> dict[str, list[dict]]:
    packages: dict[str, list[dict]] = {}
    for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        packages.setdefault(p["name"], []).append(p)
    return packages


def _has_linux_wheel(pkg: dict) -> bool:
    return any("manylinux" in w["url"] and "x86_64" in w["url"] for w in pkg.get("wheels", []))


def test_the_extras_are_declared_for_users():
    lock = _lock()
    root_extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {"cuda12", "tpu"} <= set(root_extras["optional-dependencies"])
    (app,) = lock["ifvit"]
    assert {"cuda12", "tpu"} <= set(app["optional-dependencies"])
    for extra in ("cuda12", "tpu"):  # jax[extra], one entry per Python range
        deps = app["optional-dependencies"][extra]
        assert {d["name"] for d in deps} == {"jax"} and all(d["extra"] == [extra] for d in deps)


def test_every_locked_jax_resolves_both_extras():
    lock = _lock()
    assert lock["jax"], "no jax in the lock"
    for jax in lock["jax"]:
        extras = jax.get("optional-dependencies", {})
        cuda = {d["name"]: d for d in extras.get("cuda12", [])}
        tpu = {d["name"]: d for d in extras.get("tpu", [])}
        assert "jax-cuda12-plugin" in cuda and "libtpu" in tpu, jax["version"]
        assert cuda["jax-cuda12-plugin"]["version"] == jax["version"]  # plugin matches jaxlib
        plugin = [p for p in lock["jax-cuda12-plugin"] if p["version"] == jax["version"]]
        libtpu = [p for p in lock["libtpu"] if p["version"] == tpu["libtpu"]["version"]]
        assert plugin and _has_linux_wheel(plugin[0]), jax["version"]
        assert libtpu and _has_linux_wheel(libtpu[0]), jax["version"]
        pjrt = [p for p in lock.get("jax-cuda12-pjrt", []) if p["version"] == jax["version"]]
        assert pjrt and _has_linux_wheel(pjrt[0]), jax["version"]
