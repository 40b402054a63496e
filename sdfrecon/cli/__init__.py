"""The ``sdfrecon`` console script: one small dataclass per subcommand, options built from
the config dataclasses by tyro (their field docstrings are the --help text).

Library code never parses arguments or exits; this module turns InputError into one line
on stderr and exit code 2, and TrainingError into exit code 1. Heavy imports (torch,
open3d) happen inside ``run`` so that ``--help`` is instant.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from sdfrecon.cli.common import Common, Output
from sdfrecon.config import ExtractConfig, ReconstructConfig
from sdfrecon.errors import InputError, TrainingError


@dataclass
class Reconstruct(Common):
    """Reconstruct a watertight mesh from a point cloud (SIREN SDF + marching cubes).

    Writes the mesh in the input's own coordinates, and beside it a run folder
    (<mesh stem>.run/) with the checkpoint, config.json, losses.csv and summary.json.
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
    config: Annotated[ReconstructConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=ReconstructConfig
    )

    def run(self) -> None:
        from sdfrecon.pipeline import reconstruct, run_dir_for

        mesh = reconstruct(self.input, self.output, self.config, self.overwrite, self.resume, self.run_dir)
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
        from sdfrecon.pipeline import extract_model

        mesh = extract_model(self.model, self.output, self.extract, self.device, self.overwrite, self.cloud)
        print(f"wrote {self.output} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces) "
              f"in {mesh.info['extract_seconds']:.1f} s")


def commands() -> dict[str, type]:
    """The subcommands, in --help order. Imported here, not at the top, because the
    command modules import :class:`Common` from this one."""
    from sdfrecon.cli.bench import Bench, Poisson
    from sdfrecon.cli.evaluate import Evaluate, Sample
    from sdfrecon.cli.image import Blend, FitImage, RenderImage

    return {
        "reconstruct": Reconstruct, "extract": Extract, "evaluate": Evaluate, "sample": Sample,
        "poisson": Poisson, "bench": Bench,
        "fit-image": FitImage, "render-image": RenderImage, "blend": Blend,
    }


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sdfrecon: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    command = tyro.extras.subcommand_cli_from_dict(commands(), prog="sdfrecon", args=argv)
    _setup_logging(command.quiet)
    try:
        command.run()
    except InputError as err:
        if command.debug:
            raise
        print(f"sdfrecon: error: {err}", file=sys.stderr)
        return 2
    except TrainingError as err:
        if command.debug:
            raise
        print(f"sdfrecon: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sdfrecon: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
