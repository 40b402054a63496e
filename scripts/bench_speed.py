"""Where reconstruction time goes, measured side by side in one run: the training step
(autograd's double backward against the hand-written input gradient), grid extraction
(dense against coarse-to-fine) and file-to-mesh wall time and quality of `sdfrecon
reconstruct` at its defaults against `sdfrecon poisson` (Open3D screened Poisson, depth 9).

Every figure of one table comes from the same run on the same machine, and the table gives
ratios, since shared machines are noisy. Writes bench_speed.md and bench_speed.json into --out.

    flock /tmp/sdfrecon-heavy.lock .venv/bin/python scripts/bench_speed.py --out out/bench_speed

Needs ../shared/data (the bunny cloud and its reference mesh) unless --cloud/--reference say
otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud", type=Path, default=SHARED / "bunny.xyz", help="input cloud")
    parser.add_argument("--reference", type=Path, default=SHARED / "meshes" / "bun_zipper.ply",
                        help="ground-truth mesh for Chamfer and F-score")
    parser.add_argument("--out", type=Path, default=Path("out/bench_speed"), help="output folder")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--timed-steps", type=int, default=40, help="steps timed per gradient path")
    parser.add_argument("--resolutions", default="256,512", help="extraction resolutions")
    parser.add_argument("--dense-max", type=int, default=256,
                        help="largest resolution also extracted densely (dense 512^3 takes minutes on a CPU)")
    parser.add_argument("--skip-e2e", action="store_true", help="skip the file-to-mesh comparison")
    parser.add_argument("--reconstruct-args", default="", help="extra options for `sdfrecon reconstruct`")
    return parser.parse_args(argv)


PHASES = ("sample", "forward", "loss", "backward", "adam")


def step_times(cloud: Path, device: str, timed: int) -> dict[str, dict]:
    """Median seconds per training step of each gradient path at the default config, and of
    each phase of a step. The paths run step by step in turn (each with its own network and
    optimiser, from the same seed), so that a change of machine load hits both alike."""
    import torch

    from sdfrecon.config import ReconstructConfig
    from sdfrecon.diff import gradient
    from sdfrecon.losses import sdf_losses
    from sdfrecon.normalize import Normalization
    from sdfrecon.pipeline import load_cloud
    from sdfrecon.sampling import SdfSampler
    from sdfrecon.siren import SdfSiren
    from sdfrecon.train import resolve_device

    config = ReconstructConfig()
    cloud_data, _ = load_cloud(cloud, config)
    dev = resolve_device(device)
    norm = Normalization.fit(cloud_data.points, config.normalization)
    points = torch.as_tensor(norm.to_unit(cloud_data.points), dtype=torch.float32, device=dev)
    normals = torch.as_tensor(cloud_data.normals, dtype=torch.float32, device=dev)

    def sync() -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    runs = {}
    for path in ("autograd", "analytic"):
        torch.manual_seed(config.train.seed)
        network = SdfSiren(config.siren).to(dev)
        generator = torch.Generator(device=dev)
        generator.manual_seed(config.train.seed)
        runs[path] = (network, torch.optim.Adam(network.parameters(), lr=config.train.lr),
                      SdfSampler(points, normals, config.sampling, generator), {k: [] for k in PHASES})

    def step(path: str, record: bool) -> None:
        network, optimizer, sampler, phases = runs[path]
        t0 = sync()
        batch = sampler.sample()
        t1 = sync()
        if path == "analytic":
            sdf, grad = network.value_and_gradient(batch.points)
        else:
            x = batch.points.requires_grad_(True)
            sdf = network(x)
            grad = gradient(sdf, x)
        t2 = sync()
        total = sdf_losses(batch, sdf, grad, config.loss)["total"]
        t3 = sync()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        t4 = sync()
        torch.nn.utils.clip_grad_norm_(network.parameters(), config.train.grad_clip)
        optimizer.step()
        t5 = sync()
        if record:
            for name, a, b in zip(PHASES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
                phases[name].append(b - a)

    for i in range(10 + timed):  # 10 warm-up steps each
        for path in runs:
            step(path, record=i >= 10)
    out = {}
    for path, (_, _, _, phases) in runs.items():
        medians = {k: statistics.median(v) for k, v in phases.items()}
        out[path] = {"seconds_per_step": sum(medians.values()), "phases": medians, "steps": timed}
    return out


def extraction_times(checkpoint: Path, resolutions: list[int], dense_max: int, device: str) -> list[dict]:
    """Seconds to sample the grid (and run marching cubes) dense and coarse-to-fine."""
    from sdfrecon import extract as ex
    from sdfrecon.checkpoint import load_checkpoint
    from sdfrecon.config import ExtractConfig, ReconstructConfig, from_dict
    from sdfrecon.siren import SdfSiren
    from sdfrecon.train import resolve_device

    ckpt = load_checkpoint(checkpoint, "sdf")
    network = SdfSiren(from_dict(ReconstructConfig, ckpt.config).siren)
    network.load_state_dict(ckpt.model)
    dev = resolve_device(device)
    network = network.to(dev).eval()
    rows = []
    for r in resolutions:
        for c2f in (False, True):
            if not c2f and r > dense_max:
                continue
            config = ExtractConfig(resolution=r, coarse_to_fine=c2f)
            t0 = time.perf_counter()
            volume, stats = ex.sample_grid(network, config, dev)
            t1 = time.perf_counter()
            vertices, faces = ex.marching_cubes(volume)
            t2 = time.perf_counter()
            rows.append({"resolution": r, "method": "coarse-to-fine" if c2f else "dense",
                         "grid_seconds": t1 - t0, "marching_cubes_seconds": t2 - t1,
                         "seconds": t2 - t0, "evaluated": stats.evaluated, "faces": len(faces)})
            del volume
    return rows


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_speed: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def end_to_end(args: argparse.Namespace) -> dict[str, dict]:
    """Wall seconds from file to mesh file (whole processes) and quality against the reference."""
    import trimesh

    from sdfrecon.evaluate import evaluate_mesh, load_reference
    from sdfrecon.metrics import topology

    exe = [sys.executable, "-m", "sdfrecon.cli"]
    siren_mesh, poisson_mesh = args.out / "siren.obj", args.out / "poisson.ply"
    runs = {
        "sdfrecon (defaults)": (siren_mesh, [*exe, "reconstruct", str(args.cloud), "-o", str(siren_mesh),
                                             "--overwrite", "--no-progress", "--device", args.device,
                                             *args.reconstruct_args.split()]),
        "poisson depth 9": (poisson_mesh, [*exe, "poisson", str(args.cloud), "-o", str(poisson_mesh),
                                           "--depth", "9", "--overwrite"]),
    }
    reference = load_reference(args.reference)
    out = {}
    for name, (mesh_path, cmd) in runs.items():
        seconds = _timed(cmd)
        mesh = trimesh.load(mesh_path, process=False)
        m = evaluate_mesh(mesh, reference)
        out[name] = {"wall_seconds": seconds, "chamfer_l1_rel": m["chamfer_l1_rel"],
                     "exact_chamfer_l1_rel": m.get("exact_chamfer_l1_rel"), "fscore@1%": m["fscore@1%"],
                     "components": topology(mesh)["components"], "command": " ".join(cmd)}
    return out


def _table(result: dict) -> str:
    lines = []
    steps = result.get("steps")
    if steps:
        a = steps["autograd"]["seconds_per_step"]
        head = " | ".join(f"{k} ms" for k in PHASES)
        lines += [f"| training step (default config) | s/step | speed-up | {head} |",
                  "|---|---|---|" + "---|" * len(PHASES)]
        for name, key in (("autograd double backward", "autograd"), ("hand-written input gradient", "analytic")):
            r = steps[key]
            cells = " | ".join(f"{1000 * r['phases'][k]:.1f}" for k in PHASES)
            lines.append(f"| {name} | {r['seconds_per_step']:.4f} | {a / r['seconds_per_step']:.2f} | {cells} |")
        lines.append("")
    rows = result.get("extraction", [])
    if rows:
        lines += ["| extraction | grid s | marching cubes s | total s | evaluations | vs dense |",
                  "|---|---|---|---|---|---|"]
        dense = {r["resolution"]: r["seconds"] for r in rows if r["method"] == "dense"}
        for r in rows:
            ratio = f"{dense[r['resolution']] / r['seconds']:.2f}x faster" if r["resolution"] in dense and \
                r["method"] != "dense" else ""
            lines.append(f"| {r['method']} {r['resolution']}^3 | {r['grid_seconds']:.1f} | "
                         f"{r['marching_cubes_seconds']:.1f} | {r['seconds']:.1f} | {r['evaluated']:,} | {ratio} |")
        lines.append("")
    e2e = result.get("end_to_end")
    if e2e:
        base = e2e["poisson depth 9"]
        lines += ["| file to mesh | wall s | vs Poisson | Chamfer-L1 / diag | vs Poisson | exact Chamfer-L1 / diag "
                  "| F@1% | components |", "|---|---|---|---|---|---|---|---|"]
        for name, r in e2e.items():
            exact = r["exact_chamfer_l1_rel"]
            lines.append(f"| {name} | {r['wall_seconds']:.1f} | {r['wall_seconds'] / base['wall_seconds']:.1f}x | "
                         f"{100 * r['chamfer_l1_rel']:.4f} % | {r['chamfer_l1_rel'] / base['chamfer_l1_rel']:.2f}x | "
                         f"{'' if exact is None else f'{100 * exact:.4f} %'} | {r['fscore@1%']:.4f} | "
                         f"{r['components']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for path in (args.cloud, args.reference):
        if not path.is_file():
            print(f"bench_speed: {path}: no such file (see scripts/fetch_data.py)", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict = {"cloud": str(args.cloud), "reference": str(args.reference), "device": args.device}
    result["steps"] = step_times(args.cloud, args.device, args.timed_steps)
    print(_table({"steps": result["steps"]}), flush=True)
    if not args.skip_e2e:
        result["end_to_end"] = end_to_end(args)
        print(_table({"end_to_end": result["end_to_end"]}), flush=True)
        checkpoint = args.out / "siren.run" / "checkpoint.pt"
        resolutions = [int(r) for r in args.resolutions.split(",") if r]
        result["extraction"] = extraction_times(checkpoint, resolutions, args.dense_max, args.device)
    table = _table(result)
    print(table)
    (args.out / "bench_speed.md").write_text(table)
    (args.out / "bench_speed.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
