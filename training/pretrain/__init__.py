"""Pre-training: SimCLR (NT-Xent) on unlabelled audio; `training.pretrain.run.run_pretrain`."""
