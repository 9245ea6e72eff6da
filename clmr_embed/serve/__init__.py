"""`clmr-embed serve`: a local web app to map, tag, play and compare a store's tracks."""

from clmr_embed.serve.app import create_app
from clmr_embed.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
