"""The ``reconstruct`` and ``extract`` subcommands (registered in :func:`sdfrecon.cli.commands`):
a point cloud to a mesh through a trained SIREN, and a saved model to a mesh again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import tyro

from sdfrecon.cli.common import Common, Output, passive_openmp, preset_args, preset_type
from sdfrecon.config import PRESET_HELP, PRESETS, ExtractConfig, ReconstructConfig

if TYPE_CHECKING:
    PresetConfig = ReconstructConfig
else:
    PresetConfig = preset_type(PRESETS, PRESET_HELP)
"""A :class:`ReconstructConfig` chosen by a subcommand per preset, whose defaults are the preset's."""


@tyro.conf.configure(tyro.conf.CascadeSubcommandArgs)
@dataclass(kw_only=True)
class Reconstruct(Common):
    """Reconstruct a watertight mesh from a point cloud (SIREN SDF + marching cubes).

    Writes the mesh in the input's own coordinates, and beside it a run folder
    (<mesh stem>.run/) with the checkpoint, config.json, losses.csv, summary.json and the
    pictures preview.png, sdf_slices.png and training.png.
    """

    input: tyro.conf.Positional[Path]
    """Point cloud: .xyz .txt .pts .ply .pcd .obj .off .npy .npz, with or without normals."""
    output: Output
    """Mesh to write: .obj .ply .stl .glb .off (by suffix)."""
    overwrite: bool = False
    """Replace an existing output mesh."""
    resume: bool = False
    """Continue from the run folder's checkpoint instead of starting again."""
    run_dir: Path | None = None
    """Run folder (default: <output without suffix>.run beside the mesh)."""
    previews: bool = True
    """Draw preview.png (the mesh from three sides and over the input points), sdf_slices.png
    and training.png into the run folder (a few seconds; --no-previews skips them)."""
    trim: Annotated[str | None, tyro.conf.arg(metavar="DIST|auto")] = None
    """Also write the mesh without its faces farther than DIST (the input's units) from every
    input point, beside the watertight one as <stem>.trimmed<suffix> (out/bunny.obj ->
    out/bunny.trimmed.obj): the surface where the data is, open where the scan saw nothing.
    auto: 5 median point spacings. A face goes when its farthest vertex or its centroid is
    farther; summary.json's "trim" gives the distance, faces and area removed."""
    exit_fast: ClassVar[bool] = True  # sdfrecon.cli.console: no interpreter teardown after it
    config: PresetConfig = field(default_factory=lambda: PRESETS["default"])
    """--preset fast|default|best: the recipe whose values are the defaults of the options
    ('default': those shown here). Options given explicitly win, at any value."""

    @staticmethod
    def prepare_args(args: list[str]) -> list[str]:
        """The arguments after ``reconstruct``, with --preset NAME (default: 'default', except
        for --help, which lists the presets) made its tyro subcommand."""
        asks_help = bool({"-h", "--help"} & set(args))
        return preset_args(args, PRESETS, default=None if asks_help else "default")

    def run(self) -> None:
        import dataclasses
        import time

        passive_openmp()
        from sdfrecon.reconstruction import reconstruct, run_dir_for
        from sdfrecon.timing import Stages
        from sdfrecon.trim import parse_trim

        trim = parse_trim(self.trim)

        config = self.config
        if self.quiet:
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, progress=False))
        # from the process's start where the console script knows it: interpreter and imports count
        stages = Stages(start=self.started if self.started is not None else time.perf_counter())
        mesh = reconstruct(self.input, self.output, config, self.overwrite, self.resume, self.run_dir,
                           previews=self.previews, stages=stages, trim=trim)
        info = mesh.info
        if self.verbose:
            print(stages.table())
        print(
            f"wrote {self.output} ({info['vertices']} vertices, {info['faces']} faces) in "
            f"{info['total_seconds']:.1f} s (train {info['train_seconds']:.1f} s, "
            f"extract {info['extract_seconds']:.1f} s); run folder {self.run_dir or run_dir_for(self.output)}"
        )


@dataclass
class Extract(Common):
    """Re-mesh a saved model (a run folder's checkpoint.pt) at another resolution."""

    model: tyro.conf.Positional[Path]
    """checkpoint.pt written by `sdfrecon reconstruct`."""
    output: Output
    """Mesh to write: .obj .ply .stl .glb .off (by suffix)."""
    cloud: Path | None = None
    """The input cloud, to drop components far from it (--keep-components near-input)."""
    device: str = "auto"
    """auto, cpu or cuda."""
    overwrite: bool = False
    """Replace an existing output mesh."""
    extract: Annotated[ExtractConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=ExtractConfig)

    def run(self) -> None:
        passive_openmp()
        from sdfrecon.reconstruction import extract_model

        mesh = extract_model(self.model, self.output, self.extract, self.device, self.overwrite,
                             self.cloud, progress=not self.quiet)
        print(f"wrote {self.output} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces) "
              f"in {mesh.info['extract_seconds']:.1f} s")
