"""The denoising engine: in-context layout, flow-matching sampler, windows, pipeline."""
