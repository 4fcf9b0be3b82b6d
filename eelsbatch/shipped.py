"""Where the shipped recogniser lives; importable without torch, so that the command line names it at start-up."""

from pathlib import Path

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "edgenet-v9"  # in the source tree (editable install)
