"""Where the shipped recogniser lives; importable without torch, so that the command line names it at start-up.

The model's folder is package data, so an editable install and a wheel find it the same way, beside this file.
Models trained with ``eelsbatch train --out models/NAME`` go wherever ``--out`` says, never in here.
"""

from pathlib import Path

SHIPPED_MODEL = Path(__file__).resolve().parent / "edgenet-v9"
