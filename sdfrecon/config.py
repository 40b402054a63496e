"""Configuration dataclasses, one per stage, composed into one per command.

Field docstrings become the ``--help`` text (tyro reads them). Library code takes the
sub-config it needs; variants are made with :func:`dataclasses.replace`, never by mutation.
No torch import here, so ``sdfrecon --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal


@dataclass(frozen=True)
class NormalizationConfig:
    padding: float = 0.1
    """Gap between the cloud's bounding box and the faces of [-1, 1]^3, as a fraction of the
    half-width: the longest axis spans [-(1-padding), 1-padding]. A cloud that touches the box
    gets holes where the surface leaves the grid."""


@dataclass(frozen=True)
class CleanConfig:
    outlier_neighbours: int = 0
    """k of statistical outlier removal (0: off): points whose mean distance to their k
    neighbours lies beyond --outlier-std-ratio standard deviations are dropped."""
    outlier_std_ratio: float = 2.0
    """Threshold of statistical outlier removal, in standard deviations."""
    voxel_size: float = 0.0
    """Voxel down-sampling edge as a fraction of the bounding-box diagonal (0: off)."""
    denoise: Literal["auto", "on", "off"] = "auto"
    """Move every point along its neighbourhood's normal onto a quadric fitted to its
    --denoise-neighbours nearest points (one step of moving least squares), so that the
    field and the snap fit the surface and not the noise. auto: when the noise estimated
    from the cloud (reported in the log and summary.json) exceeds --denoise-threshold point
    spacings and stays when the neighbourhood doubles (the residual of curvature or sparse
    sampling grows: the shared chair's 0.52 spacings grow 2x, and it is left alone); clean
    clouds are left as they are."""
    denoise_threshold: float = 0.5
    """auto denoising: the estimated noise (standard deviation along the normal), in median
    point spacings, above which the points are denoised."""
    denoise_neighbours: int = 0
    """Neighbourhood of the denoising fit (0: twice the one the noise estimate settled on,
    48 or 96 points: at 0.5 % noise, 96 left fandisk's points 0.097 % of the diagonal from
    the surface against 0.124 % for 48 and 0.394 % before, one unweighted round)."""
    denoise_rounds: int = 2
    """Rounds of denoising (each refits on the moved points): rocker-arm's points at 0.5 %
    noise 0.107 % of the diagonal from the surface after one, 0.098 % after two."""
    denoise_max_points: int = 300_000
    """A larger cloud is measured on a random subset of this many points, and denoised (when
    it is noisy) as that subset: the training draws ~2M surface samples in all."""


@dataclass(frozen=True)
class NormalsConfig:
    normals_mode: Literal["auto", "estimate", "free"] = "auto"
    """auto: the file's normals, estimated ones where it has none; estimate: always estimate
    (ignore the file's); free: normal-free training (no normal term, a decaying divergence
    term instead, as in DiGS)."""
    normals_orientation: Literal["outward", "inward", "file"] = "outward"
    """Which way the normals point. outward: an object seen from outside; the extreme points'
    votes decide, and flip the file's normals all or none (their consistency kept, whatever
    the vote); inward: a cloud scanned from inside (a room, a pipe): the same vote, the other
    way; file: the file's normals as they are, never flipped (estimated ones point outward)."""
    normal_neighbours: int = 30
    """k of the k-NN PCA normal estimate, used only when the file has no normals."""
    orient_neighbours: int = 20
    """k of the tangent-plane graph that makes estimated normals consistent."""


@dataclass(frozen=True)
class SirenConfig:
    hidden_features: int = 128
    """Width of each hidden sine layer (the paper uses 256; 128 reaches the same bunny
    quality in the CPU budget, see README "Defaults")."""
    hidden_layers: int = 3
    """Number of hidden sine layers (between the first sine layer and the linear output)."""
    first_omega_0: float = 30.0
    """Frequency factor omega_0 of the first layer: sin(omega_0 * (W x + b))."""
    hidden_omega_0: float = 30.0
    """Frequency factor omega_0 of the hidden layers."""
    sphere_prior: float | None = 0.5
    """SDF only: learn f(x) = SIREN(x) + |x| - sphere_prior, so training starts from the SDF of
    a sphere of this radius (a geometric initialisation: no spurious zero sets at step 0, and
    a far field that is already a distance). None: a plain SIREN."""
    sphere_prior_smoothing: float = 0.1
    """SDF only: the prior's |x| is sqrt(|x|^2 + e^2) (minus sqrt(r^2 + e^2), so the sphere
    keeps radius r), smooth at the box centre. A cone's tip is a kink that a SIREN cannot
    cancel: where the centre lies outside the shape, within the free-space margin of its
    surface, the tip stayed behind as a small closed bubble (the rocker arm's). 0: the cone."""


@dataclass(frozen=True)
class SamplingConfig:
    surface_points: int = 1536
    """On-surface points per step (drawn from the cloud, with their normals). 2048 + 2048 gave
    the same exact Chamfer-L1 on the four closed shared meshes (within 0.0001 % of the
    diagonal) for a third more time a step (docs/speed.md)."""
    off_surface_points: int = 1536
    """Points per step drawn uniformly in [-1, 1]^3 (off-surface and eikonal terms)."""
    near_surface_points: int = 0
    """Points per step drawn around surface points with Gaussian offsets (eikonal term only:
    they may lie on the surface, so the off-surface penalty does not apply to them)."""
    near_surface_sigma: float = 0.01
    """Standard deviation of the near-surface offsets, in normalised units ([-1, 1] box)."""
    free_space_pool: int = 262144
    """Off-surface points are drawn from a pool of this many uniform points whose distance to
    the nearest input point, and side of the surface where it is known, are computed once
    before training (0: fresh uniform points each step, and no free-space term)."""


@dataclass(frozen=True)
class LossConfig:
    sdf_weight: float = 3e3
    """Weight of the on-surface term mean |f(x)| (SIREN paper: 3e3)."""
    normal_weight: float = 1e2
    """Weight of the normal term mean (1 - cos(grad f, n)) on surface points (paper: 1e2)."""
    eikonal_weight: float = 5e1
    """Weight of the eikonal term mean | |grad f| - 1 | on all points (paper: 5e1)."""
    off_surface_weight: float = 1e2
    """Weight of the off-surface term mean exp(-alpha |f|) (paper: 1e2)."""
    off_surface_alpha: float = 100.0
    """alpha of the off-surface term, in 1/normalised units (paper: 100)."""
    free_space_weight: float = 3000.0
    """Weight of the free-space term on off-surface points x farther than the margin from every
    input point: mean relu(d(x) - margin - s(x) f(x)), d the distance to the nearest input
    point and s the side (+1 outside, -1 inside) where visibility or the normals tell it, else
    relu(d - margin - |f|). No surface where no point is (ghosts), and the right sign far
    away (docs/ghosts.md). 0 turns it off."""
    free_space_margin: float = 0.05
    """Distance from the input points, in normalised units, within which the free-space term
    says nothing (at least twice the cloud's median point spacing): gaps in the cloud up to
    about this size are closed freely."""
    divergence_weight: float = 10.0
    """Normal-free training only: weight of mean |div grad f| (the Laplacian) on off-surface
    points, which keeps the field free of spurious curvature while no normal term guides it."""
    divergence_decay: float = 0.5
    """Normal-free training only: the divergence weight falls linearly to 0 over this
    fraction of the steps (DiGS anneals it so that it does not smooth away detail)."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1500
    """Optimisation steps (training also stops at --time-budget, whichever comes first)."""
    time_budget: float | None = None
    """Wall-clock limit of the whole reconstruct command in seconds, from its start to the last
    file written: training gets what is left after loading and an estimate of the extraction
    and pictures. The learning-rate schedule follows the larger of step progress and time
    progress, so a budgeted run still anneals."""
    lr: float = 5e-4
    """Peak learning rate of Adam."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule after the warm-up: cosine decay to lr_final_ratio * lr, or constant."""
    lr_final_ratio: float = 0.05
    """Final learning rate as a fraction of --lr (cosine schedule)."""
    warmup_steps: int = 50
    """Linear warm-up of the learning rate, in steps."""
    gradient: Literal["analytic", "autograd"] = "analytic"
    """How grad f is computed in training: analytic (a hand-written reverse pass through the
    sine layers, and a hand-written backward of the loss through both) or autograd (double
    backward, the reference)."""
    compile: bool = False
    """torch.compile the analytic step's forward and backward (fuses their elementwise work;
    the first step pays the compile, which inductor caches on disk for later runs)."""
    grad_clip: float | None = 1.0
    """Clip the global gradient norm to this value; None disables clipping."""
    seed: int = 0
    """Seed of the network initialisation and of every sampled batch."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train and evaluate: auto picks CUDA when it is available."""
    checkpoint_every: int = 500
    """Write the checkpoint every this many steps (and at the end)."""
    log_every: int = 10
    """Write a row of the loss log every this many steps."""
    progress: bool = True
    """Show a progress bar with the loss terms."""


@dataclass(frozen=True)
class ExtractConfig:
    resolution: int = 256
    """Grid points per axis of marching cubes over [-1, 1]^3 (the voxel is 2/(resolution-1))."""
    coarse_to_fine: bool = True
    """Evaluate the network only near the surface, chunk by chunk, never holding the whole
    grid (same mesh as the dense grid, see sdf/sparse.py); False evaluates every grid point."""
    lipschitz_bound: float = 3.0
    """Assumed bound on |grad f| when skipping blocks; larger is safer and slower."""
    chunk_cells: int = 128
    """Cells per axis of one chunk of the coarse-to-fine grid and its marching cubes (a power
    of two; memory per chunk ~ 24 (chunk_cells + 1)^3 bytes)."""
    chunk_size: int = 16384
    """Points per network evaluation (memory versus speed; ~16k keeps a CPU's caches warm)."""
    keep_components: Literal["all", "near-input"] = "near-input"
    """Which connected components to keep: all, or those the input points support: within
    --component-distance of a point, at least a quarter of their vertices within two point
    spacings of one (not a pocket inside the solid), and at least 4 spacings^2 of area (not a
    speck of marching-cubes debris); the spacing is the cloud's median, or the local one where
    a part's points are sparser (a far object of a LiDAR scene). Drops ghost surfaces that no
    data supports."""
    component_distance: float = 0.02
    """Distance for --keep-components near-input, in normalised units (the box is 2 wide)."""
    snap_to_points: bool = True
    """Move each vertex along the normal by the field's residual f at its nearest input points
    (Gaussian-weighted over one point spacing): the mesh passes through the points the field
    only nearly fits (sdf/snap.py). Needs the input cloud; never onto a denoised cloud (its
    residuals are noise); off: the plain zero level set."""


@dataclass(frozen=True)
class ReconstructConfig:
    """Everything that decides a reconstruction; saved as JSON beside the mesh."""

    clean: CleanConfig = field(default_factory=CleanConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    normals: NormalsConfig = field(default_factory=NormalsConfig)
    siren: SirenConfig = field(default_factory=SirenConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready nested dict of a config dataclass."""
    return asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from :func:`to_dict` output; unknown keys are an error.

    Nested configs are the fields whose ``default_factory`` is itself a dataclass.
    """
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        factory = known[name].default_factory
        nested = isinstance(factory, type) and is_dataclass(factory)
        kwargs[name] = from_dict(factory, value) if nested else value
    return cls(**kwargs)


def with_options(config: Any, options: dict[str, Any], what: str = "options") -> Any:
    """``config`` (a dataclass of sub-config dataclasses, e.g. :class:`ReconstructConfig`)
    with fields replaced by their bare names: ``{"steps": 200, "resolution": 64}`` (dashes or
    underscores; field names are unique across the sub-configs, as on the command line).

    Values are checked against the annotations; an unknown name raises ValueError and a
    value of the wrong type TypeError, both starting with ``what``.
    """
    import typing

    sections = {f.name: getattr(config, f.name) for f in fields(config) if is_dataclass(getattr(config, f.name))}
    where = {}
    for section, sub in sections.items():
        hints = typing.get_type_hints(type(sub))
        for f in fields(sub):
            where[f.name] = (section, hints[f.name])
    changes: dict[str, dict[str, Any]] = {}
    for raw_key, value in options.items():
        key = raw_key.replace("-", "_")
        if key not in where:
            raise ValueError(f"{what}: unknown option {raw_key!r}")
        section, hint = where[key]
        changes.setdefault(section, {})[key] = _coerce(value, hint, raw_key, what)
    for section, values in changes.items():
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config


def _coerce(value: Any, hint: Any, name: str, what: str) -> Any:
    """value checked against a simple annotation (bool, int, float, str, Literal, X | None)."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
    elif origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, name, what)
            except (TypeError, ValueError):
                continue
    elif hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    raise TypeError(f"{what}: option {name!r} must be {hint}, got {value!r}")


def _preset(**options: Any) -> ReconstructConfig:
    return with_options(ReconstructConfig(), options, "preset")


PRESETS: dict[str, ReconstructConfig] = {
    "fast": _preset(steps=700, surface_points=1024, off_surface_points=1024, resolution=192),
    "default": ReconstructConfig(),
    "best": _preset(steps=3000, surface_points=2048, off_surface_points=2048, resolution=320),
}
"""Named starting points of ``reconstruct --preset``: every option's default is the preset's
value, and an option given on the command line wins (docs/speed.md has each one's time and
accuracy against Open3D's screened Poisson)."""

PRESET_HELP: dict[str, str] = {
    "fast": "--preset fast: Poisson's accuracy in about Poisson's time class (seconds on a CPU).",
    "default": "--preset default (the default): the recipe of docs/benchmarks.md.",
    "best": "--preset best: minutes on a CPU for a more accurate mesh (twice the steps, more points a step, a finer grid).",
}
"""The --help line of each preset."""
