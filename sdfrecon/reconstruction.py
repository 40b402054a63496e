"""File to mesh file: the stages of the package put together for the CLI and the tests.

reconstruct: load -> clean -> normals (estimated when missing) -> normalise -> fit SIREN -> grid ->
marching cubes -> drop unsupported components -> back to input coordinates -> write.
Everything that could stop the run (bad input, an existing output) is checked before
training starts.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.config import ExtractConfig, ReconstructConfig, from_dict, to_dict
from sdfrecon.errors import InputError, TrainingError
from sdfrecon.timing import NoStages, Stages

if TYPE_CHECKING:  # torch is imported where a model is built: `poisson` and `evaluate` never pay for it
    import torch

log = logging.getLogger("sdfrecon")


@dataclass
class MeshResult:
    """A mesh in the input's coordinates and how it was made."""

    vertices: np.ndarray  # (V, 3) float64, input units
    faces: np.ndarray  # (F, 3) int64
    normals: np.ndarray  # (V, 3) float32, unit, outward
    info: dict = field(default_factory=dict)


def run_dir_for(mesh_path: Path) -> Path:
    """The run folder beside a mesh: out/bunny.obj -> out/bunny.run/."""
    return mesh_path.with_name(mesh_path.stem + ".run")


def mesh_from_model(
    model, config: ExtractConfig, device: torch.device, support: np.ndarray | None = None,
    progress: bool = False, stages: Stages | None = None,
) -> MeshResult:
    """Extract the zero level set of a trained :class:`~sdfrecon.sdf.fit.SdfModel`.

    support: (N, 3) input points in normalised units (or their
    :class:`~sdfrecon.geometry.CloudIndex`), for --keep-components near-input and for
    --snap-to-points (the mesh moved by the fit's residual there, see sdf/snap.py).
    progress: a bar over the grid's chunks (on a terminal only). stages: where the time goes
    (grid evaluation, marching cubes, component filter, snap, untangle, mesh normals).
    """
    from sdfrecon.sdf import extract as ex

    stages = stages or NoStages()
    network = model.network.to(device).eval()
    t0 = time.perf_counter()
    vertices, faces, stats = ex.extract_mesh(network, config, device, progress)
    stages.add("grid evaluation", stats.grid_seconds)
    stages.add("marching cubes", stats.marching_cubes_seconds)
    if len(faces) == 0:
        raise TrainingError(
            "the network's zero level set does not cross the grid, so there is no surface to "
            "mesh (train longer, or check the input)"
        )
    index = None
    if support is not None:
        from sdfrecon.geometry import CloudIndex

        with stages("component filter"):
            index = support if isinstance(support, CloudIndex) else CloudIndex.of(support)
    dropped = 0
    if config.keep_components == "near-input" and index is not None:
        with stages("component filter"):
            distance, nearest_point = index.tree.query(vertices, k=1, workers=-1)
            vertices, faces, dropped = ex.drop_far_components(
                vertices, faces, index.points, config.component_distance, index.spacing, distance,
                nearest_point, index.tree)
    if dropped:
        log.info("dropped %d component(s) that the input points do not support (farther than %g "
                 "(normalised) from every point, a pocket mostly farther than two point spacings, "
                 "or smaller than 4 spacings^2)", dropped, config.component_distance)
    with stages("mesh normals"):  # once: the snap's directions and the file's normals
        normals = ex.field_normals(network, vertices, device, config.chunk_size)
    if config.snap_to_points and index is not None:
        from sdfrecon.sdf.snap import crowded_faces, snap_cap, snap_offsets, untangle

        with stages("snap"):
            field = ex.field_evaluator(network)
            step = snap_cap(config.resolution)  # about half a voxel
            offset = snap_offsets(vertices, index, lambda x: ex.evaluate(field, x, device, config.chunk_size),
                                  max_step=step)
            moved = vertices + offset[:, None] * normals
        with stages("untangle"):
            voxel = 2.0 / (config.resolution - 1)
            candidates = crowded_faces(vertices, normals, faces, reach=2.0 * step + 2.0 * voxel)
            vertices = untangle(vertices, moved, faces, candidates=candidates)
    info = {"grid_evaluations": stats.evaluated, "grid_points": stats.total,
            "components_dropped": dropped, "extract_seconds": time.perf_counter() - t0}
    return MeshResult(model.normalization.to_world(vertices), faces, normals, info)


def after_training_seconds(config: ReconstructConfig, n_points: int, device: torch.device,
                           previews: bool) -> float:
    """A generous estimate of the seconds a run spends after its last training step: the
    network evaluated at about 24 R^2 grid points (16 R^2 measured on the bunny at 256^3) and
    at each of about 3 R^2 vertices three times over (its gradient) and at the input points
    (the snap), timed here on this device with an untrained network of the same size; about
    2e-5 R^2 seconds of marching cubes, filtering and writing; 1.5 s of imports the
    extraction may still need (Open3D's, for the untangle test); 2.5 s of pictures."""
    from sdfrecon.sdf.extract import evaluate, field_evaluator
    from sdfrecon.sdf.siren import SdfSiren

    r = config.extract.resolution
    network = SdfSiren(config.siren).to(device).eval()
    x = np.random.default_rng(0).uniform(-1, 1, (config.extract.chunk_size, 3)).astype(np.float32)
    evaluate(field_evaluator(network), x, device, config.extract.chunk_size)  # warm-up
    t = time.perf_counter()
    evaluate(field_evaluator(network), x, device, config.extract.chunk_size)
    per_point = (time.perf_counter() - t) / len(x)
    calls = 24 * r * r + 9 * r * r + min(n_points, 8 * 3 * r * r)
    return per_point * calls + 2e-5 * r * r + 1.5 + (2.5 if previews else 0.0)


# Options that may change between a run and its --resume: when to stop and how to show it
# (steps only where no schedule is laid out over them: _steps_problem).
_RESUME_FREE = {"steps", "time_budget", "progress", "device", "checkpoint_every", "log_every"}


def _steps_problem(saved: dict, config: ReconstructConfig) -> str | None:
    """Why the checkpoint's config ``saved`` cannot resume under another --steps, or None: the
    cosine learning rate and normal-free training's divergence decay are laid out over the
    steps, so another count would change them mid-run (a jump in the learning rate)."""
    steps = saved["train"]["steps"]
    if steps == config.train.steps:
        return None
    schedules = [what for what, used in (
        ("the cosine learning-rate schedule", config.train.lr_schedule == "cosine"),
        ("the divergence decay", config.normals.normals_mode == "free" and config.loss.divergence_decay > 0),
    ) if used]
    if not schedules:
        return None
    return (f"was trained for --steps {steps}: resume with --steps {steps} (another count would "
            f"change {' and '.join(schedules)} mid-run) or drop --resume")


def _resumable(saved: dict, current: dict) -> bool:
    """Whether a checkpoint's config continues under the current one (same model and data)."""
    strip = lambda c: {**c, "train": {k: v for k, v in c["train"].items() if k not in _RESUME_FREE}}  # noqa: E731
    return strip(saved) == strip(current)


def _output_bytes(config: ReconstructConfig, log_rows: int) -> tuple[int, int]:
    """A generous estimate of the bytes written: (mesh, run folder).

    The mesh: about 4 R^2 vertices for a shape that fills the grid (a sphere of radius 0.9
    in the box gives 3.8 R^2), two faces each, about 150 bytes a vertex in the largest
    format (text OBJ with normals). The run folder: the weights and Adam's two moments in
    float32, twice (the new checkpoint is written before the old one goes), and the log.
    """
    r = config.extract.resolution
    mesh = 4 * r * r * 150
    h, layers = config.siren.hidden_features, config.siren.hidden_layers
    parameters = 4 * h + layers * (h * h + h) + h + 1
    run = 2 * (3 * 4 * parameters + 64_000) + 200 * log_rows + 64_000
    return mesh, run


def _check_outputs(input_path: Path, output: Path, run_dir: Path, config: ReconstructConfig,
                   overwrite: bool, resume: bool) -> None:
    """Everything about the outputs that can be known before training: the mesh format, no
    silent overwrite (of the mesh, or of an earlier run's checkpoint), folders that can be
    made and written, and enough free space."""
    import os

    from sdfrecon.io.atomic import check_folder, check_free_space, check_writable, existing_ancestor
    from sdfrecon.io.formats import check_mesh_suffix

    check_mesh_suffix(output)
    if input_path.is_file() and output.is_file() and os.path.samefile(input_path, output):
        raise InputError(output, "is the input file: choose another output")
    check_writable(output, overwrite)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(run_dir, "is a file, not a run folder")
    check_folder(run_dir)
    checkpoint = run_dir / "checkpoint.pt"
    if checkpoint.exists() and not (resume or overwrite):
        raise InputError(checkpoint, "is left from an earlier run (pass --resume to continue "
                                     "it or --overwrite to start again)")
    log_rows = config.train.steps // max(config.train.log_every, 1)
    mesh_bytes, run_bytes = _output_bytes(config, log_rows)
    mesh_base, run_base = existing_ancestor(output.parent), existing_ancestor(run_dir)
    if mesh_base.stat().st_dev == run_base.stat().st_dev:
        check_free_space(mesh_base, mesh_bytes + run_bytes, output, "the mesh and run folder")
    else:
        check_free_space(mesh_base, mesh_bytes, output, "the mesh")
        check_free_space(run_base, run_bytes, run_dir, "the run folder")


def _check_resumable(ckpt_path: Path, config: ReconstructConfig):
    """The checkpoint to resume from, checked to continue ``config`` (same model and data)
    and to load into the network, optimiser and generator, and the config to continue with
    (a checkpoint from before the smoothed sphere prior keeps its cone); InputError otherwise."""
    import dataclasses

    import torch

    from sdfrecon.sdf.checkpoint import check_generator_state, load_checkpoint
    from sdfrecon.sdf.optim import Adam
    from sdfrecon.sdf.siren import SdfSiren

    previous = load_checkpoint(ckpt_path, "sdf")
    try:
        # options added later: what the runs before them did
        previous.config["normals"].setdefault("normals_orientation", "outward")
        siren = previous.config["siren"]
        if "sphere_prior_smoothing" not in siren:  # trained before the smoothed prior: the cone
            siren["sphere_prior_smoothing"] = 0.0
            if config.siren.sphere_prior_smoothing != 0.0:
                config = dataclasses.replace(config, siren=dataclasses.replace(config.siren, sphere_prior_smoothing=0.0))
                log.info("%s predates the smoothed sphere prior: resuming with its own prior "
                         "(sphere_prior_smoothing 0)", ckpt_path)
        same = _resumable(previous.config, to_dict(config))
        steps = _steps_problem(previous.config, config) if same else None
    except (KeyError, TypeError, AttributeError):
        raise InputError(ckpt_path, "is a damaged checkpoint (its config is incomplete)") from None
    if not same:
        raise InputError(ckpt_path, "was trained with other settings; resume with the same options or drop --resume")
    if steps:
        raise InputError(ckpt_path, steps)
    try:
        network = SdfSiren(config.siren)
        network.load_state_dict(previous.model)
        Adam(network.parameters(), lr=config.train.lr).load_state_dict(previous.optimizer)
        check_generator_state(previous.generator)
        if previous.step < 0 or not np.isfinite(previous.elapsed):
            raise ValueError("negative step or non-finite time")
        if not all(torch.isfinite(v).all() for v in previous.model.values() if v.is_floating_point()):
            raise ValueError("non-finite weights")
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(ckpt_path, f"is a damaged checkpoint ({problem})") from None
    return previous, config


def extraction(config: ExtractConfig, cloud_info: dict) -> ExtractConfig:
    """The extraction settings for a cloud :func:`~sdfrecon.cloud.prepare.prepare_cloud`
    describes in ``cloud_info``: no snap onto a denoised cloud. There the fit's residual at
    the points is the noise that denoising left (about sqrt(6 / k) of it), and moving the
    mesh onto it puts the noise back (fertility at 0.5 % noise: exact Chamfer-L1 0.109 % of
    the diagonal snapped, 0.092 % not)."""
    if cloud_info.get("denoised") and config.snap_to_points:
        log.info("the cloud was denoised: the mesh is not snapped to its points")
        return dataclasses.replace(config, snap_to_points=False)
    return config


def reconstruct(
    input_path: Path,
    output: Path,
    config: ReconstructConfig,
    overwrite: bool = False,
    resume: bool = False,
    run_dir: Path | None = None,
    previews: bool = False,
    stages: Stages | None = None,
    trim: float | str | None = None,
) -> MeshResult:
    """Reconstruct input_path into the mesh file output; the run folder gets the checkpoint
    (checkpoint.pt), the resolved config (config.json), the loss log (losses.csv) and a
    summary (summary.json). resume continues from the run folder's checkpoint. previews:
    also preview.png, sdf_slices.png and training.png there (:mod:`sdfrecon.viz.previews`),
    drawn after the mesh is written. stages: the clock of the whole command (by default one
    started now); summary.json's ``stage_seconds`` sum to its wall time. trim (a distance in
    the input's units, or 'auto'; see :mod:`sdfrecon.trim`): also write the mesh without its
    faces farther than that from every input point beside output (<stem>.trimmed<suffix>);
    summary.json's ``trim`` says what went."""
    stages = stages or Stages(start=time.perf_counter())
    stages.add("startup", stages.since_start())  # interpreter, argument parsing, light imports
    with stages("imports"):
        from sdfrecon.cloud.normalize import Normalization
        from sdfrecon.cloud.prepare import load_cloud
        from sdfrecon.geometry import CloudIndex
        from sdfrecon.io import save_mesh
        from sdfrecon.io.atomic import check_writable, stale_temporaries, write_json
        from sdfrecon.io.mesh import check_mesh_precision
        from sdfrecon.sdf import extract  # noqa: F401  (the extraction's modules, here rather than mid-run)
        from sdfrecon.sdf.fit import fit_sdf
        from sdfrecon.sdf.train import resolve_device

    with stages("checks"):
        run_dir = run_dir or run_dir_for(output)
        _check_outputs(input_path, output, run_dir, config, overwrite, resume)
        if trim is not None:
            from sdfrecon.trim import trimmed_path

            check_writable(trimmed_path(output), overwrite)
        ckpt_path = run_dir / "checkpoint.pt"
        for stale in stale_temporaries(ckpt_path):  # a run killed while it saved a checkpoint
            log.info("removing %s, left by a run that was killed while writing its checkpoint", stale)
            stale.unlink(missing_ok=True)
        previous = None
        if resume and ckpt_path.exists():
            previous, config = _check_resumable(ckpt_path, config)
        elif resume:
            log.info("%s does not exist: starting from step 0", ckpt_path)
        device = resolve_device(config.train.device)
    cloud, cloud_info = load_cloud(input_path, config, stages)
    with stages("normalise"):
        check_mesh_precision(output, cloud.points.min(axis=0), cloud.points.max(axis=0))  # STL, GLB
        normalization = Normalization.fit(cloud.points, config.normalization)
        points = normalization.to_unit(cloud.points)
    log.info("%s: %d points, normals: %s; training on %s", input_path, len(points),
             cloud_info["normals"], device)
    with stages("run folder"):
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", to_dict(config), overwrite=True)
    if previous is not None:
        log.info("resuming from %s at step %d", ckpt_path, previous.step)
    with stages("k-d tree"):  # one tree and spacing for the pool, the filter and the snap
        index = CloudIndex.of(points)
    train_config = config
    if config.train.time_budget is not None:  # the whole command's budget: training gets the rest
        with stages("budget"):
            left = config.train.time_budget - stages.since_start() - after_training_seconds(
                config, len(points), device, previews)
        if left < 1.0:
            log.warning("--time-budget %g s leaves %.1f s for training after loading and the "
                        "expected extraction: training for 1 s", config.train.time_budget, left)
        train_config = dataclasses.replace(config, train=dataclasses.replace(
            config.train, time_budget=max(left, 1.0)))
    model, state = fit_sdf(points, cloud.normals, normalization, train_config, device, ckpt_path,
                           run_dir / "losses.csv", previous, source=str(input_path.resolve()),
                           stages=stages, index=index)
    mesh = mesh_from_model(model, extraction(config.extract, cloud_info), device, support=index,
                           progress=config.train.progress, stages=stages)
    with stages("write"):
        save_mesh(output, mesh.vertices, mesh.faces, mesh.normals, overwrite=overwrite)
    trimmed = None
    if trim is not None:
        with stages("trim"):
            trimmed = _write_trimmed(output, mesh, index, normalization, trim, overwrite)
    if previews:
        from sdfrecon.viz.previews import model_field, write_previews

        with stages("previews"):
            mesh.info["preview_seconds"] = write_previews(
                run_dir, mesh.vertices, mesh.faces, cloud.points,
                model_field(model, device, config.extract.chunk_size), run_dir / "losses.csv",
                input_path.name)
        log.info("previews in %s: %s", run_dir, ", ".join(
            f"{k} {v:.1f} s" for k, v in mesh.info["preview_seconds"].items()))
    seconds = stages.summary()
    mesh.info.update({
        "input": str(input_path), "output": str(output), "points": len(points),
        **cloud_info, "steps": state.step, "device": str(device),
        "vertices": len(mesh.vertices), "faces": len(mesh.faces),
        "load_seconds": sum(seconds.get(k, 0.0) for k in ("read", "clean", "normals", "normalise")),
        "train_seconds": sum(seconds.get(k, 0.0) for k in ("pool", "training", "checkpoints")),
        "total_seconds": seconds["wall"], "stage_seconds": seconds,
        "final_losses": state.history[-1] if state.history else {},
        "normalization": normalization.to_dict(),
    })
    if trimmed is not None:
        mesh.info["trim"] = trimmed
    write_json(run_dir / "summary.json", mesh.info, overwrite=True)
    return mesh


def _write_trimmed(output: Path, mesh: MeshResult, index, normalization, trim: float | str,
                   overwrite: bool) -> dict:
    """Write ``mesh`` without its faces far from the input points (index: the cloud in
    normalised units) to <stem>.trimmed<suffix>; the summary (input units) for summary.json."""
    from sdfrecon.geometry import vertex_components
    from sdfrecon.io import save_mesh
    from sdfrecon.trim import TRIM_SPACINGS, trim_distance, trim_mesh, trimmed_path

    scale = normalization.scale
    distance = trim_distance(trim, index.spacing / scale)
    cut = trim_mesh(normalization.to_unit(mesh.vertices), mesh.faces, index.tree, distance * scale)
    path = trimmed_path(output)
    info = {**cut.info(), "distance": distance, "auto": trim == "auto",
            "spacings": distance * scale / index.spacing, "area_removed": cut.area_removed / scale**2,
            "output": str(path), "components": 0}
    if trim == "auto":
        info["spacings"] = TRIM_SPACINGS
    how = f"{distance:.4g} ({info['spacings']:.3g} point spacings)"
    if len(cut.faces) == 0:
        log.warning("--trim %s: every face lies farther than %s from every input point: no "
                    "trimmed mesh written", trim, how)
        info["output"] = None
        return info
    labels = vertex_components(cut.faces, len(cut.vertices))
    info["components"] = int(len(np.unique(labels[cut.faces[:, 0]])))
    save_mesh(path, mesh.vertices[cut.used], cut.faces, mesh.normals[cut.used], overwrite=overwrite)
    log.info("trimmed %d of %d faces (%.2f %% of the area) farther than %s from every input "
             "point: wrote %s (%d faces, %d component(s))", cut.faces_removed,
             len(mesh.faces), 100 * cut.area_share, how, path, len(cut.faces), info["components"])
    return info


def extract_model(
    model_path: Path, output: Path, config: ExtractConfig, device_name: str = "auto",
    overwrite: bool = False, cloud: Path | None = None, progress: bool = False,
) -> MeshResult:
    """Re-mesh a saved checkpoint with other extraction settings (resolution, say).

    cloud: the input points, for --keep-components near-input; by default the cloud the
    model was trained on, where that file still exists (else all components are kept).
    """
    from sdfrecon.io import save_mesh
    from sdfrecon.io.atomic import check_writable
    from sdfrecon.io.formats import check_mesh_suffix
    from sdfrecon.io.mesh import check_mesh_precision
    from sdfrecon.sdf.train import resolve_device

    check_mesh_suffix(output)
    check_writable(output, overwrite)
    model = load_model(model_path)
    normalization = model.normalization
    reach = 1.0 / normalization.scale  # the grid's box [-1, 1]^3 in input units
    check_mesh_precision(output, np.subtract(normalization.center, reach),
                         np.add(normalization.center, reach))
    if cloud is None and model.source and Path(model.source).is_file():
        cloud = Path(model.source)
    support = None
    if config.keep_components == "near-input" or config.snap_to_points:
        if cloud is None:
            log.warning("the training cloud is not available: keeping all components and the "
                        "plain zero level set (pass --cloud)")
        else:  # prepared as training prepared it (cleaned, denoised)
            from sdfrecon.cloud.prepare import load_cloud

            points, cloud_info = load_cloud(cloud, model.config)
            support = normalization.to_unit(points.points)
            config = extraction(config, cloud_info)
    mesh = mesh_from_model(model, config, resolve_device(device_name), support, progress)
    save_mesh(output, mesh.vertices, mesh.faces, mesh.normals, overwrite=overwrite)
    return mesh


def load_model(model_path: Path):
    """The :class:`~sdfrecon.sdf.fit.SdfModel` of a checkpoint written by ``reconstruct``
    (on the CPU); InputError for anything that is not one."""
    from sdfrecon.cloud.normalize import Normalization
    from sdfrecon.sdf.checkpoint import load_checkpoint
    from sdfrecon.sdf.fit import SdfModel
    from sdfrecon.sdf.siren import SdfSiren

    ckpt = load_checkpoint(model_path, "sdf")
    try:
        # checkpoints from before the smoothed prior were trained with the cone (smoothing 0)
        ckpt.config.get("siren", {}).setdefault("sphere_prior_smoothing", 0.0)
        recon = from_dict(ReconstructConfig, ckpt.config)
        normalization = Normalization.from_dict(ckpt.extra["normalization"])
        if not (np.isfinite(normalization.center).all() and 0 < normalization.scale < np.inf):
            raise ValueError(f"unusable normalization {normalization}")
        network = SdfSiren(recon.siren)
        network.load_state_dict(ckpt.model)
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as err:
        problem = (str(err).splitlines() or [""])[0][:200]
        raise InputError(model_path, f"is a damaged checkpoint ({type(err).__name__}: {problem})") from None
    return SdfModel(network, normalization, recon, ckpt.extra.get("source"))
