"""Fully supervised SampleCNN: encoder and head trained end to end on labels (CLMR's baseline)."""
