"""Audio and model constants of CLMR's SampleCNN, each with its derivation."""

SAMPLE_RATE = 22050  # Hz; CLMR's best results came from 22.05 kHz (CLMR issue #5)
WINDOW_SAMPLES = 3**10  # 59049 samples: SampleCNN's 10 stride-3 stages reduce it to length 1
WINDOW_SECONDS = WINDOW_SAMPLES / SAMPLE_RATE  # 2.678 s
# CLMR v1's CPC encoder (v1 model.py): one Conv1d per stage, ReLU between (no BatchNorm)
CPC_STRIDES = (5, 3, 2, 2, 2, 2, 2)
CPC_FILTERS = (10, 6, 4, 4, 4, 2, 2)
CPC_PADDING = (2, 2, 2, 2, 1, 1, 1)
EMBEDDING_DIM = 512  # channels of SampleCNN's last block, flattened at length 1
MAX_HOP_SECONDS = 86400.0  # one day: a longer hop between windows only overflows sample counts
CLMR_CHANNELS = (128, 128, 128, 256, 256, 256, 256, 256, 256, 512, 512)  # blocks 0..10 (§1)
CHECKPOINT_FORMAT = "clmr-embed-checkpoint"  # the `format` tag of clmr-embed's own checkpoints
ARTIFACT_FORMAT_VERSION = 1  # version of the ONNX metadata contract written by `clmr-embed export`

# MagnaTagATune top-50 tags in the output order of CLMR's and musicnn's heads
# (musicnn-training output_labels_mtt.txt; clmr-reference.md §7.1).
MTAT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip
