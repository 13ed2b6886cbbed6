"""``python -m metaforge`` (and ``torchrun -m metaforge``) runs the CLI."""

from metaforge.cli import main

main()
