"""Benchmark specs: the shared options, the suites and their shapes (a folder of meshes or a
TOML file; an SRB-layout folder), the methods, and the SIREN config a job's overrides resolve to.

Everything here runs in the driver before any work starts, so that a bad spec fails with an
:class:`~sdfrecon.errors.InputError` at once, not later in a worker.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tyro

from sdfrecon.errors import InputError

METHODS: tuple[str, ...] = ("siren", "siren-estimated", "siren-free", "poisson", "poisson-estimated")
"""siren: the file's normals (estimated where it has none); siren-estimated: normals estimated
and oriented (normals_mode estimate), whatever the file holds: a cloud without normals;
siren-free: normal-free training (normals_mode free); poisson: screened Poisson with the file's
normals (estimated where it has none); poisson-estimated: screened Poisson with normals
estimated and oriented as sdfrecon does (normals_mode estimate), whatever the file holds."""
METHOD_NORMALS: dict[str, str] = {"siren": "auto", "siren-estimated": "estimate", "siren-free": "free",
                                  "poisson": "auto", "poisson-estimated": "estimate"}
"""The normals_mode (see NormalsConfig) each method runs with; it is the method's, not an option."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHAPE_KEYS = {"name", "cloud", "reference", "points", "noise", "outliers", "seed", "siren", "poisson"}
_POISSON_KEYS = {"depth", "trim"}


def parse_assignments(items: tuple[str, ...] | list[str]) -> dict:
    """['steps=100', 'sphere_prior=None', 'device=cpu'] -> {'steps': 100, 'sphere_prior': None,
    'device': 'cpu'}: values are JSON (numbers, true/false, null; None too), else strings."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise InputError("--siren", f"expected NAME=VALUE, got {item!r}")
        text = text.strip()
        if text in ("None", "none"):
            value = None
        elif text in ("True", "False"):
            value = text == "True"
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        out[name.strip().replace("-", "_")] = value
    return out


def parse_levels(items: tuple[str, ...] | list[str]) -> tuple[float, ...]:
    """['0.0025,0.005'] or ['0.0025', '0.005'] -> (0.0025, 0.005): noise levels, each a
    finite number >= 0 (InputError naming --noise otherwise)."""
    levels = []
    for text in ",".join(items).split(","):
        if not text.strip():
            continue
        try:
            value = float(text)
        except ValueError:
            raise InputError("--noise", f"expected numbers separated by commas, got {text.strip()!r}") from None
        if not (math.isfinite(value) and value >= 0.0):
            raise InputError("--noise", f"must be numbers >= 0, got {text.strip()}")
        levels.append(value)
    if not levels:
        raise InputError("--noise", "needs at least one level")
    return tuple(levels)


# --noise 0.0025,0.005 (or 0.0025 0.005) on the command line, a tuple in Python.
_Levels = Annotated[tuple[float, ...], tyro.constructors.PrimitiveConstructorSpec(
    nargs="*", metavar="SIGMA[,SIGMA...]", instance_from_str=parse_levels,
    is_instance=lambda value: isinstance(value, tuple),
    str_from_instance=lambda value: [",".join(f"{v:g}" for v in value)])]


# --siren NAME=VALUE ... on the command line, a dict in Python.
_Assignments = Annotated[dict[str, Any], tyro.constructors.PrimitiveConstructorSpec(
    nargs="*", metavar="NAME=VALUE", instance_from_str=parse_assignments,
    is_instance=lambda value: isinstance(value, dict),
    str_from_instance=lambda value: [f"{k}={json.dumps(v)}" for k, v in value.items()])]


@dataclass(frozen=True)
class BenchOptions:
    """Settings shared by every job; a TOML spec may override them per shape. These fields
    are also the ``sdfrecon bench`` options (tyro reads their docstrings for --help)."""

    points: int = 30_000
    """Points sampled on each reference mesh."""
    noise: _Levels = (0.0,)
    """Gaussian noise of the sampled clouds: sigma as a fraction of the bbox diagonal. Several
    levels (0.0025,0.005) sample one cloud per mesh and level, named <mesh>-noise<level>
    (the mesh's own name at 0), each scored against the clean mesh."""
    outliers: float = 0.0
    """Fraction of the sampled points replaced by uniform outliers."""
    seed: int = 0
    """Seed of the cloud sampling and of the evaluation's surface samples."""
    samples: int = 100_000
    """Evaluation: area-weighted samples drawn on each mesh."""
    exact: bool = True
    """Evaluation: also the exact point-to-triangle metrics."""
    siren_steps: int | None = None
    """SIREN training steps (default: reconstruct's default)."""
    resolution: int | None = None
    """SIREN marching-cubes resolution (default: reconstruct's default)."""
    siren: _Assignments = field(default_factory=dict)
    """More options of the SIREN jobs, as NAME=VALUE (reconstruct's option names, e.g.
    hidden_features=64 time_budget=300 sphere_prior=None, or preset=fast); a TOML spec's
    per-shape options win."""
    poisson_depth: Annotated[int, tyro.conf.arg(name="depth")] = 9
    """Poisson octree depth."""
    poisson_trim: Annotated[float | None, tyro.conf.arg(name="trim")] = None
    """Poisson density-trimming quantile (default: no trimming)."""
    srb_samples: int = 1_000_000
    """Suite srb: points sampled on each reconstruction for d_C, d_H, d_C->, d_H-> (the
    published protocol samples 1,000,000; fewer is faster and no longer that protocol)."""

    def __post_init__(self) -> None:
        """--siren-steps and --resolution are short for --siren steps=... resolution=...;
        after this, ``siren`` holds every SIREN override."""
        if isinstance(self.noise, (int, float)):  # BenchOptions(noise=0.005) from Python
            object.__setattr__(self, "noise", (float(self.noise),))
        shortcuts = {"steps": self.siren_steps, "resolution": self.resolution}
        merged = {**self.siren, **{k: v for k, v in shortcuts.items() if v is not None}}
        object.__setattr__(self, "siren", merged)

    def check(self) -> None:
        """InputError, naming the command-line option, for a value no job could use (before
        any work starts, not in a worker)."""
        for name, value in (("points", self.points), ("samples", self.samples),
                            ("srb-samples", self.srb_samples)):
            if value < 1:
                raise InputError(f"--{name}", f"must be >= 1, got {value}")
        if self.seed < 0:
            raise InputError("--seed", f"must be >= 0, got {self.seed}")
        parse_levels([f"{v!r}" for v in self.noise])
        if self.poisson_trim is not None and not 0.0 <= self.poisson_trim < 1.0:
            raise InputError("--trim", f"must be a quantile in [0, 1), got {self.poisson_trim}")
        if "normals_mode" in {k.replace("-", "_") for k in self.siren}:
            raise InputError("--siren", "normals_mode is set by the method (siren: the file's normals, "
                                        "siren-estimated: estimated, siren-free: none); remove it")
        try:
            siren_config(self.siren)
        except (TypeError, ValueError) as err:
            raise InputError("--siren", str(err)) from None


@dataclass(frozen=True)
class Shape:
    """One benchmark shape: where its cloud comes from and what it is scored against."""

    name: str
    reference: Path | None
    """Reference mesh (or cloud) for the metrics; None: no metrics."""
    cloud: Path | None
    """Cloud file to reconstruct; None: sampled from ``reference``."""
    points: int
    noise: float
    outliers: float
    seed: int
    siren: dict[str, Any]
    poisson: dict[str, Any]
    suite: str = "shapes"
    """The suite the shape belongs to: decides where its meshes go and how they are scored."""


@dataclass(frozen=True)
class Suite:
    """A kind of benchmark input: how its shapes are found, which methods run by default, how
    jobs are scored and where the meshes go (relative to OUT/meshes)."""

    name: str
    default_methods: tuple[str, ...]
    protocol: str
    """'reference': metrics against each shape's reference (sdfrecon.evaluation.scoring); 'srb': the
    published SRB protocol against ground_truth/ and the scan, plus the tool's own metrics."""
    mesh_layout: str
    """'flat': OUT/meshes/<shape>__<method>.ply; 'by-method': OUT/meshes/<method>/<shape>.ply."""

    def mesh_path(self, shape: str, method: str) -> str:
        """A job's mesh, relative to OUT (POSIX separators, as results.jsonl records it)."""
        if self.mesh_layout == "by-method":
            return f"meshes/{method}/{shape}.ply"
        return f"meshes/{shape}__{method}.ply"


SUITES: dict[str, Suite] = {
    "shapes": Suite("shapes", ("siren", "poisson"), "reference", "flat"),
    "srb": Suite("srb", ("siren", "siren-free", "poisson", "poisson-estimated"), "srb", "by-method"),
}


def get_suite(name: str) -> Suite:
    """The suite of that name; InputError naming --suite otherwise."""
    if name not in SUITES:
        raise InputError("--suite", f"unknown suite {name!r} (available: {', '.join(SUITES)})")
    return SUITES[name]


def load_suite(suite: str, data: Path, options: BenchOptions) -> list[Shape]:
    """The shapes of ``data`` read as ``suite``: 'shapes' -> :func:`load_shapes` (a folder of
    meshes or a TOML file); 'srb' -> every scans/NAME.ply with its ground_truth/NAME.xyz (the
    scan is the cloud, the ground truth the reference)."""
    if get_suite(suite).name == "shapes":
        return load_shapes(data, options)
    from sdfrecon.bench.srb import srb_shapes

    shapes = []
    for name, scan, truth in srb_shapes(data):
        _check_name(data, name)
        shapes.append(Shape(name, truth, scan, 0, 0.0, 0.0, options.seed, {}, {}, suite=suite))
    return shapes


def parse_methods(text: str | Sequence[str]) -> tuple[str, ...]:
    """'siren,poisson' (or a list) -> ('siren', 'poisson'); InputError for unknown names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(m.strip() for m in items if m.strip()))
    unknown = [m for m in names if m not in METHODS]
    if not names or unknown:
        raise InputError("--methods", f"unknown or no methods {unknown or list(items)} "
                                      f"(available: {', '.join(METHODS)})")
    return names


def load_shapes(spec: Path, options: BenchOptions) -> list[Shape]:
    """The shapes of a spec: a folder of meshes (every .obj .ply .stl .glb .off in it, not
    recursive; a cloud is sampled from each) or a TOML file (see :func:`_toml_shapes`)."""
    from sdfrecon.io import MESH_SUFFIXES

    spec = Path(spec)
    if not spec.exists():
        raise InputError(spec, "no such file or folder")
    if spec.is_file():
        return _toml_shapes(spec, options)
    files = sorted(p for p in spec.iterdir()
                   if p.is_file() and p.suffix.lower() in MESH_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise InputError(spec, f"holds no mesh files ({', '.join(MESH_SUFFIXES)})")
    stems = [p.stem for p in files]
    shapes = []
    for path in files:
        base = path.stem if stems.count(path.stem) == 1 else path.name.replace(".", "_")
        for noise in dict.fromkeys(options.noise):  # in order, each level once
            name = base if noise == 0.0 else f"{base}-noise{noise:g}"
            _check_name(spec, name)
            shapes.append(Shape(name, path, None, options.points, noise, options.outliers,
                                options.seed, {}, {}))
    return shapes


def _check_name(spec: Path, name: str) -> None:
    if not _NAME.match(name):
        raise InputError(spec, f"shape name {name!r} must be letters, digits, '.', '_' or '-' "
                               "(it names the output files)")


def _toml_shapes(spec: Path, options: BenchOptions) -> list[Shape]:
    """Shapes from a TOML file; relative paths are relative to the file's folder::

        [defaults]                  # optional: for every shape (same keys as a shape, no paths)
        points = 20000
        siren = { steps = 1000 }

        [[shape]]
        name = "bunny"              # names the outputs: letters, digits, . _ -
        reference = "meshes/bun_zipper.ply"   # mesh (or cloud) to score against
        cloud = "bunny.xyz"         # optional: reconstruct this file instead of sampling
        points = 30000              # sampling: count, noise (x diag), outliers (fraction), seed
        noise = 0.001
        [shape.siren]               # ReconstructConfig fields by name, as on the command line
        steps = 500
        [shape.poisson]             # depth, trim
        depth = 8

    A shape needs a reference or a cloud (no reference: no metrics). Per-shape values beat
    [defaults], which beat the command-line options. A shape that sets no noise and has no
    cloud of its own is sampled at every --noise level, as <name>-noise<level> (its own name
    at 0).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise InputError(spec, "TOML specs need Python >= 3.11 (or the tomli package)") from None
    try:
        data = tomllib.loads(spec.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(spec, f"is not valid TOML ({err})") from None
    unknown = set(data) - {"shape", "defaults"}
    if unknown:
        raise InputError(spec, f"unknown top-level keys {sorted(unknown)} (expected [[shape]] and [defaults])")
    defaults = data.get("defaults", {})
    rows = data.get("shape", [])
    if not isinstance(defaults, dict) or not isinstance(rows, list) or not rows:
        raise InputError(spec, "needs at least one [[shape]] table (and [defaults] must be a table)")
    bad = set(defaults) - (_SHAPE_KEYS - {"name", "cloud", "reference"})
    if bad:
        raise InputError(spec, f"[defaults]: unknown keys {sorted(bad)}")
    shapes: list[Shape] = []
    for index, row in enumerate(rows):
        where = f"shape {index + 1}" + (f" ({row.get('name')})" if isinstance(row, dict) and "name" in row else "")
        if not isinstance(row, dict):
            raise InputError(spec, f"{where}: must be a table")
        bad = set(row) - _SHAPE_KEYS
        if bad:
            raise InputError(spec, f"{where}: unknown keys {sorted(bad)} (known: {', '.join(sorted(_SHAPE_KEYS))})")
        merged = {**defaults, **row}
        name = merged.get("name")
        if not isinstance(name, str):
            raise InputError(spec, f"{where}: needs a name")
        _check_name(spec, name)
        if name in {s.name for s in shapes}:
            raise InputError(spec, f"{where}: the name {name!r} is used twice")
        paths = {}
        for key in ("reference", "cloud"):
            value = merged.get(key)
            if value is not None and not isinstance(value, str):
                raise InputError(spec, f"{where}: {key} must be a path string")
            paths[key] = None if value is None else (spec.parent / value)
        if paths["reference"] is None and paths["cloud"] is None:
            raise InputError(spec, f"{where}: needs a reference mesh or a cloud (or both)")
        try:
            points = _typed(merged.get("points", options.points), int, "points", minimum=1)
            noise = _typed(merged.get("noise", 0.0), float, "noise", minimum=0.0)
            outliers = _typed(merged.get("outliers", options.outliers), float, "outliers", minimum=0.0)
            seed = _typed(merged.get("seed", options.seed), int, "seed", minimum=0)
            siren = {**_table(defaults.get("siren", {}), "siren"), **_table(row.get("siren", {}), "siren")}
            siren_config(siren)  # unknown or mistyped options fail now, not in a worker
            if "normals_mode" in {k.replace("-", "_") for k in siren}:
                raise ValueError("siren: normals_mode is set by the method (siren, siren-free)")
            poisson = {**_table(defaults.get("poisson", {}), "poisson"), **_table(row.get("poisson", {}), "poisson")}
            bad = set(poisson) - _POISSON_KEYS
            if bad:
                raise ValueError(f"poisson: unknown keys {sorted(bad)} (known: depth, trim)")
        except (TypeError, ValueError) as err:
            raise InputError(spec, f"{where}: {err}") from None
        # a shape that sets no noise (and has no cloud of its own) is sampled at every --noise level
        own = "noise" in merged or paths["cloud"] is not None
        for level in [noise] if own else dict.fromkeys(options.noise):
            label = name if own or level == 0.0 else f"{name}-noise{level:g}"
            if label in {s.name for s in shapes}:
                raise InputError(spec, f"{where}: the name {label!r} is used twice")
            shapes.append(Shape(label, paths["reference"], paths["cloud"], points, level, outliers,
                                seed, siren, poisson))
    return shapes


def _typed(value: Any, kind: type, name: str, minimum: float | None = None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise TypeError(f"{name} must be {'a number' if kind is float else 'an integer'}, got {value!r}")
    value = kind(value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _table(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a table of options")
    return dict(value)


def siren_config(overrides: dict[str, Any]):
    """``reconstruct``'s config: the preset ``overrides['preset']`` (default: 'default') with
    fields replaced by name (``steps``, ``resolution``, ``hidden_features``, ...; dashes or
    underscores; see :func:`sdfrecon.config.with_options`), and ``progress=False``.
    ValueError/TypeError for an unknown name or preset, or a value of a wrong type.
    """
    from sdfrecon.config import PRESETS, with_options

    options = dict(overrides)
    name = options.pop("preset", "default")
    if name not in PRESETS:
        raise ValueError(f"siren: unknown preset {name!r} (available: {', '.join(PRESETS)})")
    return with_options(PRESETS[name], {**options, "progress": False}, "siren")
