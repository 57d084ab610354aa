"""The on-disk cache of a frozen autoencoder's latents: shards round-trip, a broken shard
is only a cache miss, and the folder's name changes with exactly what changes latents."""

import torch

from charanim.training.latent_cache import LatentCache, cache_folder


def test_entries_saved_as_shards_come_back_and_broken_shards_are_skipped(tmp_path):
    folder = tmp_path / "cache"
    cache = LatentCache(folder)
    clip, still = torch.randn(4, 6, 8, 8), torch.randn(4, 1, 8, 8)
    cache.put("world-0000001", clip, still)
    first = cache.save()
    assert first is not None and cache.save() is None  # nothing new, no empty shard
    cache.put("world-0000002", clip * 2, still * 2)
    cache.save()
    (folder / "broken.safetensors").write_bytes(b"not a shard")

    again = LatentCache(folder)
    assert len(again) == 2
    loaded_clip, loaded_still = again.get("world-0000001")
    assert loaded_clip.dtype == torch.float16 and torch.equal(loaded_clip, clip.half())
    assert torch.equal(loaded_still, still.half())
    assert torch.equal(again.get("world-0000002")[0], (clip * 2).half())
    assert LatentCache().save() is None and len(LatentCache(tmp_path / "absent")) == 0


def test_the_cache_folder_follows_the_encoder_the_size_and_the_data(tmp_path):
    from diffusers import AutoencoderKL

    from charanim.models.autoencoder import FrameAutoencoder

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[8, 8], down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, latent_channels=4, norm_num_groups=4,
    )  # fmt: skip
    autoencoder = FrameAutoencoder(vae)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"id": "world-0000001"}\n')
    base = cache_folder(manifest, autoencoder, (32, 32), "pad")
    assert base.parent == tmp_path / ".latents"
    assert cache_folder(manifest, autoencoder, (32, 32), "pad") == base
    assert cache_folder(manifest, autoencoder, (64, 64), "pad") != base
    with torch.no_grad():
        vae.decoder.conv_out.bias.add_(1.0)  # a fine-tuned decoder makes the same latents
    assert cache_folder(manifest, autoencoder, (32, 32), "pad") == base
    with torch.no_grad():
        vae.encoder.conv_in.bias.add_(1.0)
    retrained = cache_folder(manifest, autoencoder, (32, 32), "pad")
    assert retrained != base
    manifest.write_text('{"id": "world-0000002"}\n')  # other data (a regenerated world)
    assert cache_folder(manifest, autoencoder, (32, 32), "pad") != retrained
