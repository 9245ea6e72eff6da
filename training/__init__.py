"""Training side of clmr-embed (torch): SampleCNN, SimCLR pre-training, linear evaluation."""
