"""The ``reconstruct`` and ``extract`` subcommands (registered in :func:`sdfrecon.cli.commands`):
a point cloud to a mesh through a trained SIREN, and a saved model to a mesh again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from sdfrecon.cli.common import Common, Output
from sdfrecon.config import ExtractConfig, ReconstructConfig


@dataclass
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
    config: Annotated[ReconstructConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=ReconstructConfig
    )

    def run(self) -> None:
        import dataclasses

        from sdfrecon.reconstruction import reconstruct, run_dir_for

        config = self.config
        if self.quiet:
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, progress=False))
        mesh = reconstruct(self.input, self.output, config, self.overwrite, self.resume, self.run_dir,
                           previews=self.previews)
        info = mesh.info
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
        from sdfrecon.reconstruction import extract_model

        mesh = extract_model(self.model, self.output, self.extract, self.device, self.overwrite,
                             self.cloud, progress=not self.quiet)
        print(f"wrote {self.output} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces) "
              f"in {mesh.info['extract_seconds']:.1f} s")
