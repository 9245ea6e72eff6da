"""Linear evaluation: heads on frozen embeddings, reports, taggers (`run.run_linear`)."""
