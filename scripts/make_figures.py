"""The README's pictures, made by the commands the README shows (``make figures``):

* docs/figures/preview.png and sdf_slices.png: ``sdfrecon reconstruct`` of the bunny cloud
  (../shared/data/bunny.xyz; without ../shared, the committed data/sample_ellipsoid.xyz),
  copied from its run folder;
* docs/figures/render.png: ``sdfrecon render`` of that mesh beside the reference mesh (when
  ../shared has it);
* docs/figures/report.png: a screenshot, in headless Chromium, of the report.html of a small
  ``sdfrecon bench`` (two shared meshes, or a sphere and a torus made here).

The PNGs are reduced to 256-colour palettes so that each stays small in git. Writes
docs/figures.md with each command and the seconds it took.

    .venv/bin/python scripts/make_figures.py            # or: make figures
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _machine() -> str:
    """The CPU model and count, and the memory, as /proc reports them (Linux)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        memory = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal"))) / 2**20
        return f"{os.cpu_count()} x {model}, {memory:.0f} GB"
    except (OSError, StopIteration, ValueError):
        return f"{os.cpu_count()} CPUs"


def _run(command: list[str], log: list[tuple[str, float]]) -> None:
    """Run an sdfrecon command (as the console script would), record its wall time."""
    def short(c) -> str:  # paths as seen from the checkout
        if isinstance(c, Path):
            return os.path.relpath(c, REPO)
        return str(c)

    shown = "sdfrecon " + " ".join(shlex.quote(short(c)) for c in command)
    print(f"$ {shown}", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sdfrecon.cli", *map(str, command)], check=True, cwd=REPO)
    seconds = time.perf_counter() - started
    log.append((shown, seconds))
    print(f"  {seconds:.1f} s", flush=True)


def _small_png(source: Path, target: Path) -> int:
    """Copy a PNG as a 256-colour palette image (a shaded mesh needs no more); its bytes."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(source).convert("RGB")
    # fast octree keeps a colour map within 14 of 255 per channel (median cut turned the deep
    # blue of the slices teal) at a fifth of the bytes of the RGB file
    image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(target, optimize=True)
    return target.stat().st_size


def _bench_shapes(folder: Path) -> Path:
    """Two reference meshes for the report: shared ones, or a sphere and a torus."""
    folder.mkdir(parents=True, exist_ok=True)
    shared = [SHARED / "meshes" / "spot.obj", SHARED / "meshes" / "fandisk.obj"]
    if all(p.is_file() for p in shared):
        for p in shared:
            shutil.copyfile(p, folder / p.name)
    else:
        import trimesh

        trimesh.creation.icosphere(4).export(folder / "sphere.ply")
        trimesh.creation.torus(1.0, 0.35).export(folder / "torus.obj")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/figures"), help="work folder")
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"), help="where the PNGs go")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of the reconstruction (default: reconstruct's default)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted reconstruction from its run folder's checkpoint")
    parser.add_argument("--bench-steps", type=int, default=500, help="SIREN steps of the report's bench")
    parser.add_argument("--bench-resolution", type=int, default=160, help="SIREN grid of the report's bench")
    args = parser.parse_args(argv)
    out, figures = REPO / args.out, REPO / args.figures
    log: list[tuple[str, float]] = []
    bunny = SHARED / "bunny.xyz"
    cloud = bunny if bunny.is_file() else REPO / "data" / "sample_ellipsoid.xyz"
    mesh = out / f"{cloud.stem}.obj"
    _run(["reconstruct", cloud, "-o", mesh, "--overwrite", *(["--resume"] if args.resume else []),
          *(["--steps", str(args.steps)] if args.steps else [])], log)
    summary = json.loads(mesh.with_name(mesh.stem + ".run").joinpath("summary.json").read_text())
    notes = [f"reconstruct: {summary['steps']} steps, training {summary['train_seconds']:.1f} s of the run"
             + (" (the resumed part)" if args.resume else "") + f", {summary['faces']:,} faces; pictures: "
             + ", ".join(f"{k} {v:.1f} s" for k, v in summary.get("preview_seconds", {}).items())]
    sizes = {}
    for name in ("preview.png", "sdf_slices.png"):
        sizes[name] = _small_png(mesh.with_name(mesh.stem + ".run") / name, figures / name)
    reference = SHARED / "meshes" / "bun_zipper.ply"
    if cloud == bunny and reference.is_file():
        _run(["render", mesh, reference, "-o", out / "render.png", "--overwrite"], log)
        sizes["render.png"] = _small_png(out / "render.png", figures / "render.png")
    bench = out / "bench"  # a second run reuses the finished jobs (bench skips them) and redraws the report
    _run(["bench", "--shapes", _bench_shapes(out / "shapes"), "-o", bench, "--jobs", "2",
          "--siren-steps", str(args.bench_steps), "--resolution", str(args.bench_resolution)], log)
    from sdfrecon.viz.browser import load_page, missing_browser

    if missing_browser() is not None:
        print(f"no report screenshot: {missing_browser()}", file=sys.stderr)
    else:
        started = time.perf_counter()
        page = load_page(bench / "report.html", width=1280, height=900)
        if page.errors:
            raise SystemExit(f"report.html has console errors: {page.errors}")
        (out / "report.png").write_bytes(page.screenshot)
        log.append((f"screenshot of {bench.relative_to(REPO)}/report.html in headless chromium",
                    time.perf_counter() - started))
        sizes["report.png"] = _small_png(out / "report.png", figures / "report.png")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    lines = ["# Figures", "",
             "**What this page measures:** what drawing the README's pictures (docs/figures/) costs: "
             "the wall time of each command that makes them and each picture's size in git.", "",
             "**Regenerate** from a clean checkout: `make figures` (here `scripts/make_figures.py "
             + " ".join(argv if argv is not None else sys.argv[1:]) + "`), from "
             f"{'../shared/data' if cloud == bunny else 'data/sample_ellipsoid.xyz'}.", "",
             f"**Machine and commit:** {_machine()}; commit {commit}.", "",
             "| command | seconds |", "|---|---:|"]
    lines += [f"| `{c}` | {s:.1f} |" for c, s in log]
    lines += ["", *notes, "", "| picture | bytes |", "|---|---:|"] + [f"| docs/figures/{n} | {b:,} |" for n, b in sizes.items()]
    page = REPO / "docs" / "figures.md"
    kept = ""  # the hand-run sections after the generated tables (the renderer comparison)
    if page.is_file() and "\n## " in page.read_text():
        kept = "\n## " + page.read_text().split("\n## ", 1)[1]
    page.write_text("\n".join(lines) + "\n" + kept)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
