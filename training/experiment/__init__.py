"""`clmr-embed train experiment`: a cached grid of pre-training and linear-probe cells."""
