"""PyTorch reference implementations of the classic GANs, trained by one engine from TOML configs."""
