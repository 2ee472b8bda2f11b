"""Data loading: MNIST-style IDX files, image folders, paired and unpaired sets, the embedded sample."""
