"""The command line (the composition root): the only code that prints, exits, imports training."""

from clmr_embed.cli.app import app, main

__all__ = ["app", "main"]
