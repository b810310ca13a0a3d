"""The latent VAE wrapper against diffusers' own AutoencoderKL (tiny random config)."""
import json

import pytest
import torch

TINY = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
            down_block_types=('DownEncoderBlock2D', ) * 2,
            up_block_types=('UpDecoderBlock2D', ) * 2,
            layers_per_block=1, norm_num_groups=4, sample_size=16, scaling_factor=0.25)


@pytest.fixture(scope='module')
def vae_folder(tmp_path_factory):
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('vae')
    ref = AutoencoderKL(**TINY).eval()
    ref.save_pretrained(str(folder))  # config.json + diffusion_pytorch_model.safetensors
    return str(folder), ref


def test_vae_equals_diffusers(vae_folder):
    from mmmim.models.tokenizers import VAE
    folder, ref = vae_folder
    vae = VAE(folder, checkpoint=folder, sample=False)
    assert vae.scaling_factor == 0.25 and vae.latent_channels == 4 and vae.downsample == 2
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z_ref = ref.encode(x).latent_dist.mode() * 0.25
        img_ref = ref.decode(z_ref / 0.25).sample
    z = vae.encode(x)
    assert z.shape == (2, 4, 8, 8)
    torch.testing.assert_close(z, z_ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(vae.decode(z), img_ref, atol=1e-6, rtol=1e-6)
    # a posterior sample: the mean plus its std times the generator's noise
    g = torch.Generator().manual_seed(3)
    sampled = VAE(folder, checkpoint=folder, scaling_factor=0.5).encode(x, generator=g)
    post = ref.encode(x).latent_dist
    noise = torch.randn(post.mean.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(sampled, (post.mean + post.std * noise) * 0.5, atol=1e-6, rtol=1e-6)


def test_vae_is_frozen_and_strict(vae_folder, tmp_path):
    from mmmim.models.tokenizers import VAE
    folder, ref = vae_folder
    vae = VAE(folder, checkpoint=folder)
    vae.train()
    assert not vae.training and not any(m.training for m in vae.modules())
    assert not any(p.requires_grad for p in vae.parameters())
    # a single weights file, e.g. a .pth state dict
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    torch.save(sd, tmp_path / 'vae.pth')
    VAE(TINY, checkpoint=str(tmp_path / 'vae.pth'))
    del sd['decoder.conv_out.weight']
    torch.save(sd, tmp_path / 'bad.pth')
    with pytest.raises(KeyError, match='bad.pth.*decoder.conv_out.weight'):
        VAE(TINY, checkpoint=str(tmp_path / 'bad.pth'))
    with pytest.raises(FileNotFoundError, match='nowhere'):
        VAE(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'config.json').write_text(json.dumps(TINY))
    with pytest.raises(FileNotFoundError, match='holds none of'):
        VAE(str(tmp_path / 'empty'), checkpoint=str(tmp_path / 'empty'))


def test_transfusion_encodes_through_the_vae(vae_folder, demo_bpe_tokenizer):
    """With a VAE the patches are 2x2 patches of the scaled latents (k = 2: 4 x 4 = 16 values)."""
    from mmengine.registry import DefaultScope

    from mmmim.models.algorithms.transfusion import patchify
    from mmmim.registry import MODELS
    folder, ref = vae_folder
    with DefaultScope.overwrite_default_scope('mmmim'):
        model = MODELS.build(dict(
            type='Transfusion', tokenizer=demo_bpe_tokenizer,
            vae=dict(type='VAE', config=folder, checkpoint=folder, sample=False),
            generator=dict(type='TransfusionTransformer',
                           arch=dict(embed_dim=32, depth=1, num_heads=4))))
    assert model.generator.patch_dim == 16
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z = ref.encode(x).latent_dist.mode() * 0.25
    torch.testing.assert_close(model.to_patches(x), patchify(z, 2), atol=1e-6, rtol=1e-6)
    out = model.loss(x, [dict(text='a red ring')] * 2)
    assert torch.isfinite(out['loss_lm']) and torch.isfinite(out['loss_ddpm'])
    assert model.text_to_image(['a red ring'], num_patches=16, num_inference_steps=2).shape == \
        (1, 3, 16, 16)
