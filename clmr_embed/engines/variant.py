"""Low-precision variants of a model file: where the int8 file lives, what ties it to its source."""

from __future__ import annotations

from pathlib import Path

from clmr_embed.errors import ConfigError, ModelArtifactError

# Metadata an int8 file adds to its source's clmr.* keys (an fp32 file has none of them).
PRECISION_KEY = "clmr.precision"  # "int8"; absent means fp32
SOURCE_KEY = "clmr.quantized_from_sha256"  # sha256 of the fp32 file it was quantized from
FLOAT_BLOCKS_KEY = "clmr.float_blocks"  # SampleCNN blocks left in float, e.g. "0,1"
INT8_SUFFIX = ".int8.onnx"
FILE_PRECISIONS = ("fp32", "int8")  # precisions stored in a file; bf16 is a run-time hint


def int8_path(fp32_path: Path) -> Path:
    """The int8 file of a model: X.onnx -> X.int8.onnx in the same folder."""
    path = Path(fp32_path)
    return path.with_name(path.name.removesuffix(".onnx") + INT8_SUFFIX)


def file_precision(metadata: dict[str, str]) -> str:
    """ "int8" or "fp32", from a file's metadata map."""
    return metadata.get(PRECISION_KEY, "fp32")


def variant_path(model: Path, precision: str) -> Path:
    """The file that runs `model` at a file precision: itself for fp32, its int8 file for int8.

    Raises:
        ModelArtifactError: the int8 file is missing.
    """
    if precision not in FILE_PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not stored in a file: {FILE_PRECISIONS}")
    path = int8_path(model) if precision == "int8" else Path(model)
    if precision == "int8" and not path.is_file():
        raise ModelArtifactError(
            f"{model} has no int8 file {path.name} beside it; build it with "
            "`python -m tools.precision int8 FREE_MUSIC_DIR` (its model option names the file)"
        )
    return path


def check_variant(model: Path, precision: str, fp32_sha256: str, metadata: dict[str, str]) -> None:
    """Refuse a loaded file that is not `model` at `precision`.

    Args:
        model: the fp32 model file.
        precision: "fp32" or "int8", as passed to variant_path.
        fp32_sha256: sha256 of `model`, which an int8 file must name as its source.
        metadata: the metadata map of the file variant_path gave.

    Raises:
        ModelArtifactError: `model` is itself an int8 file, or the int8 file was quantized from
            another version of the model.
    """
    found = file_precision(metadata)
    if precision == "fp32" and found != "fp32":
        raise ModelArtifactError(
            f"{model} is an {found} file; pass the fp32 model it was made from, with the "
            "precision to run it at"
        )
    if precision == "int8" and metadata.get(SOURCE_KEY) != fp32_sha256:
        raise ModelArtifactError(
            f"{int8_path(model)} was quantized from another model file (sha256 "
            f"{metadata.get(SOURCE_KEY)}, {Path(model).name}'s is {fp32_sha256}); rebuild it "
            "with `python -m tools.precision int8 FREE_MUSIC_DIR` (its model option names the file)"
        )
