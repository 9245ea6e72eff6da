"""`python -m clmr_embed` runs the CLI."""

from clmr_embed.cli import main

main()
