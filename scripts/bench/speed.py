"""Where reconstruction time goes, measured side by side in one run: the training step
(autograd's double backward against the hand-written gradient and backward, eager and
torch.compile'd; the compiled path's first step includes its compile; and normal-free
training's step, its divergence term by autograd against the forward-mode Laplacian), grid extraction
(dense against coarse-to-fine) and file-to-mesh wall time and quality of `sdfrecon
reconstruct` at its defaults against `sdfrecon poisson` (Open3D screened Poisson, depth 9).

Every figure of one table comes from the same run on the same machine, and the table gives
ratios, since shared machines are noisy. Writes bench_speed.md and bench_speed.json into --out.

    flock /tmp/sdfrecon-heavy.lock .venv/bin/python scripts/bench/speed.py --out out/bench_speed

Needs ../shared/data (the bunny cloud and its reference mesh) unless --cloud/--reference say
otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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
    parser.add_argument("--extract-row", default=None, help=argparse.SUPPRESS)  # R,method: one row
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="extract from this checkpoint instead of the end-to-end run's")
    return parser.parse_args(argv)


PHASES = ("sample", "forward", "loss", "backward", "adam")


def step_times(cloud: Path, device: str, timed: int) -> dict[str, dict]:
    """Median seconds per training step of each gradient path at the default config, and of
    each phase of a step. The paths run step by step in turn (each with its own network and
    optimiser, from the same seed), so that a change of machine load hits both alike."""
    import dataclasses

    import torch

    from sdfrecon.cloud.normalize import Normalization
    from sdfrecon.cloud.prepare import load_cloud
    from sdfrecon.config import ReconstructConfig
    from sdfrecon.sdf.derivatives import divergence, gradient
    from sdfrecon.sdf.losses import sdf_losses
    from sdfrecon.sdf.sampling import SdfSampler
    from sdfrecon.sdf.siren import SdfSiren
    from sdfrecon.sdf.train import resolve_device

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
    for path in ("autograd", "analytic", "compiled", "free-autograd", "free-forward"):
        torch.manual_seed(config.train.seed)
        network = SdfSiren(config.siren).to(dev)
        if path == "compiled":
            network.use_compiled_kernels()
        generator = torch.Generator(device=dev)
        generator.manual_seed(config.train.seed)
        free = path.startswith("free")  # normal-free training: no normals, the divergence term
        runs[path] = (network, torch.optim.Adam(network.parameters(), lr=config.train.lr),
                      SdfSampler(points, None if free else normals, config.sampling, generator),
                      {k: [] for k in PHASES})
    free_loss = dataclasses.replace(config.loss, normal_weight=0.0)

    def step(path: str, record: bool) -> None:
        network, optimizer, sampler, phases = runs[path]
        t0 = sync()
        batch = sampler.sample()
        t1 = sync()
        div = None
        if path == "free-forward":
            sdf, grad, div = network.value_gradient_laplacian(batch.points)
        elif path in ("autograd", "free-autograd"):
            x = batch.points.requires_grad_(True)
            sdf = network(x)
            grad = gradient(sdf, x)
            if path == "free-autograd":
                div = divergence(grad, x)
        else:
            sdf, grad = network.value_and_gradient(batch.points)
        t2 = sync()
        if div is None:
            total = sdf_losses(batch, sdf, grad, config.loss)["total"]
        else:
            total = sdf_losses(batch, sdf, grad, free_loss, div, config.loss.divergence_weight)["total"]
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

    first = {}
    for path in runs:  # the first step of each path: the compiled one compiles here
        t0 = time.perf_counter()
        step(path, record=False)
        first[path] = time.perf_counter() - t0
    for i in range(10 + timed):  # 10 warm-up steps each
        for path in runs:
            step(path, record=i >= 10)
    out = {}
    for path, (_, _, _, phases) in runs.items():
        medians = {k: statistics.median(v) for k, v in phases.items()}
        out[path] = {"seconds_per_step": sum(medians.values()), "phases": medians, "steps": timed,
                     "first_step_seconds": first[path]}
    return out


def extraction_times(checkpoint: Path, resolutions: list[int], dense_max: int, device: str) -> list[dict]:
    """Seconds to extract the mesh dense and coarse-to-fine (sparse, chunked; see extract.py),
    split into grid evaluation and marching cubes, and each extraction's peak memory: every
    row runs in a fresh process (:func:`extraction_row`), so that its peak RSS is its own."""
    rows = []
    for r in resolutions:
        for method in ("dense", "coarse-to-fine"):
            if method == "dense" and r > dense_max:
                continue
            cmd = [sys.executable, __file__, "--extract-row", f"{r},{method}", "--checkpoint",
                   str(checkpoint), "--device", device]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                raise SystemExit(f"bench_speed: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


def extraction_row(checkpoint: Path, resolution: int, method: str, device: str) -> dict:
    """One extraction of the checkpoint's network in this process; peak RSS in MiB, and the
    RSS before extraction (model loaded) to subtract from it."""
    import resource

    from sdfrecon.config import ExtractConfig, ReconstructConfig, from_dict
    from sdfrecon.sdf import extract as ex
    from sdfrecon.sdf.checkpoint import load_checkpoint
    from sdfrecon.sdf.siren import SdfSiren
    from sdfrecon.sdf.train import resolve_device

    ckpt = load_checkpoint(checkpoint, "sdf")
    network = SdfSiren(from_dict(ReconstructConfig, ckpt.config).siren)
    network.load_state_dict(ckpt.model)
    dev = resolve_device(device)
    network = network.to(dev).eval()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    config = ExtractConfig(resolution=resolution, coarse_to_fine=method != "dense")
    t0 = time.perf_counter()
    _, faces, stats = ex.extract_mesh(network, config, dev)
    seconds = time.perf_counter() - t0
    return {"resolution": resolution, "method": method, "grid_seconds": stats.grid_seconds,
            "marching_cubes_seconds": stats.marching_cubes_seconds, "seconds": seconds,
            "evaluated": stats.evaluated, "faces": len(faces), "rss_before_mb": before,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_speed: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def end_to_end(args: argparse.Namespace) -> dict[str, dict]:
    """Wall seconds from file to mesh file (whole processes) and quality against the reference."""
    from sdfrecon.evaluation.scoring import load_reference

    exe = [sys.executable, "-m", "sdfrecon.cli"]
    siren_mesh, poisson_mesh = args.out / "siren.obj", args.out / "poisson.ply"
    runs = {
        "sdfrecon (defaults)": (siren_mesh, [*exe, "reconstruct", str(args.cloud), "-o", str(siren_mesh),
                                             "--overwrite", "--no-progress", "--no-previews", "--device", args.device,
                                             *args.reconstruct_args.split()]),
        "poisson depth 9": (poisson_mesh, [*exe, "poisson", str(args.cloud), "-o", str(poisson_mesh),
                                           "--depth", "9", "--overwrite"]),
    }
    reference = load_reference(args.reference)
    return {name: timed_mesh_run(cmd, mesh_path, reference) for name, (mesh_path, cmd) in runs.items()}


def timed_mesh_run(cmd: list[str], mesh_path: Path, reference) -> dict:
    """Run a command that writes mesh_path; its wall seconds and the mesh's scores against
    reference (an :func:`sdfrecon.evaluation.scoring.load_reference`)."""
    import trimesh

    from sdfrecon.evaluation.metrics import topology
    from sdfrecon.evaluation.scoring import evaluate_mesh

    seconds = _timed(cmd)
    mesh = trimesh.load(mesh_path, process=False)
    m = evaluate_mesh(mesh, reference)
    return {"wall_seconds": seconds, "chamfer_l1_rel": m["chamfer_l1_rel"],
            "exact_chamfer_l1_rel": m.get("exact_chamfer_l1_rel"), "fscore@1%": m["fscore@1%"],
            "components": topology(mesh)["components"], "command": " ".join(cmd)}


def _table(result: dict) -> str:
    lines = []
    steps = result.get("steps")
    if steps:
        a = steps["autograd"]["seconds_per_step"]
        head = " | ".join(f"{k} ms" for k in PHASES)
        lines += [f"| training step (default config) | s/step | speed-up | first step s | {head} |",
                  "|---|---|---|---|" + "---|" * len(PHASES)]
        names = (("autograd double backward", "autograd"), ("analytic, hand-written backward", "analytic"),
                 ("analytic, torch.compile'd", "compiled"),
                 ("normal-free: divergence by autograd (triple backward)", "free-autograd"),
                 ("normal-free: forward-mode Laplacian, one backward", "free-forward"))
        for name, key in names:
            if key not in steps:
                continue
            r = steps[key]
            cells = " | ".join(f"{1000 * r['phases'][k]:.1f}" for k in PHASES)
            lines.append(f"| {name} | {r['seconds_per_step']:.4f} | {a / r['seconds_per_step']:.2f} | "
                         f"{r['first_step_seconds']:.1f} | {cells} |")
        lines.append("")
    rows = result.get("extraction", [])
    if rows:
        lines += ["| extraction | grid s | marching cubes s | total s | evaluations | vs dense | peak RSS MiB "
                  "(model loaded) |", "|---|---|---|---|---|---|---|"]
        dense = {r["resolution"]: r["seconds"] for r in rows if r["method"] == "dense"}
        for r in rows:
            ratio = f"{dense[r['resolution']] / r['seconds']:.2f}x faster" if r["resolution"] in dense and \
                r["method"] != "dense" else ""
            lines.append(f"| {r['method']} {r['resolution']}^3 | {r['grid_seconds']:.1f} | "
                         f"{r['marching_cubes_seconds']:.1f} | {r['seconds']:.1f} | {r['evaluated']:,} | {ratio} | "
                         f"{r['peak_rss_mb']:.0f} ({r['rss_before_mb']:.0f}) |")
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
    if args.extract_row:  # a child process of extraction_times
        r, method = args.extract_row.split(",")
        print(json.dumps(extraction_row(args.checkpoint, int(r), method, args.device)))
        return 0
    # No OMP_WAIT_POLICY here: the reconstruct processes inherit this environment, and a
    # passive policy (sleeping OpenMP threads) made a quiet machine's steps ~1.5x slower.
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
    checkpoint = args.checkpoint or args.out / "siren.run" / "checkpoint.pt"
    if checkpoint.is_file():
        resolutions = [int(r) for r in args.resolutions.split(",") if r]
        result["extraction"] = extraction_times(checkpoint, resolutions, args.dense_max, args.device)
    table = _table(result)
    print(table)
    (args.out / "bench_speed.md").write_text(table)
    (args.out / "bench_speed.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
