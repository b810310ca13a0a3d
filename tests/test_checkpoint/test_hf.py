"""Hugging Face layouts, checked against transformers' ViTMAE / BEiT / Data2VecVision.

Tiny mmmim models are exported and opened with ``from_pretrained(folder)``
(local files only), tiny transformers models are saved with
``save_pretrained`` and imported; either way the features agree within
1e-5 (fp32, max abs) and every weight is accounted for.
"""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.registry import DefaultScope
from transformers import (BeitConfig, BeitForImageClassification, BeitForMaskedImageModeling,
                          BeitModel, Data2VecVisionConfig, Data2VecVisionModel, ViTMAEConfig,
                          ViTMAEForPreTraining, ViTMAEModel)

from mmmim.checkpoint import (from_hf, hf_model_cfg, hf_options, read_hf_folder, to_hf,
                              write_hf_folder)
from mmmim.registry import MODELS

from ..conftest import REPO

TINY = dict(embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0)
MAE_CFG = dict(
    type='MAE', mask_ratio=0.75,
    backbone=dict(type='MAEViT', arch=TINY, img_size=32, patch_size=8),
    neck=dict(type='MAEDecoder', img_size=32, patch_size=8, embed_dim=32, decoder_embed_dim=24,
              decoder_depth=2, decoder_num_heads=2, mlp_ratio=2.0),
    head=dict(type='PixelReconstructionHead', patch_size=8, norm_pix=True))


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmmim'):
        return MODELS.build(cfg).eval()


def randomize(module, seed=0):
    """Non-trivial values everywhere (zero tables, unit norms, fixed sin-cos rows included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return module


def load_hf(cls, folder, unused_prefix=None, **kwargs):
    """``cls.from_pretrained(folder)`` offline; every weight loads (but ``unused_prefix.*``)."""
    model, info = cls.from_pretrained(folder, local_files_only=True, output_loading_info=True,
                                      attn_implementation='eager', **kwargs)
    if unused_prefix:
        assert info['unexpected_keys'] and all(
            k.startswith(unused_prefix) for k in info['unexpected_keys'])
        info['unexpected_keys'] = []
    assert not any(info.values()), info
    return model.eval()


def images(n=2, size=32):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def max_diff(a, b):
    return (a - b).abs().max().item()


def test_mae_exports_to_vitmae_with_its_decoder(tmp_path):
    mae = randomize(build(MAE_CFG))
    config, sd, dropped = to_hf(mae.state_dict(), 'hf-vitmae', **hf_options(MAE_CFG))
    assert dropped == [] and config['architectures'] == ['ViTMAEForPreTraining']
    write_hf_folder(str(tmp_path), config, sd)
    hf = load_hf(ViTMAEForPreTraining, str(tmp_path))
    x, noise = images(), torch.rand(2, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = hf(pixel_values=x, noise=noise)
        pred, mask = mae.forward_train(x, noise)
        loss = mae.head.loss(pred, x, mask)
    assert torch.equal(out.mask, mask)
    assert max_diff(out.logits, pred) <= 1e-5
    assert abs(out.loss.item() - loss.item()) <= 1e-5
    # the encoder alone, on all patches in order
    encoder = load_hf(ViTMAEModel, str(tmp_path), unused_prefix='decoder.')
    encoder.config.mask_ratio = 0.0
    with torch.no_grad():
        feats = encoder(pixel_values=x, noise=torch.arange(16.).expand(2, 16)).last_hidden_state
        assert max_diff(feats, mae.backbone(x)[-1]) <= 1e-5


def test_mae_encoder_alone_exports_to_vitmae_model(tmp_path):
    mae = build(MAE_CFG)
    sd = {k: v for k, v in mae.state_dict().items() if k.startswith('backbone.')}
    config, tensors, _ = to_hf(sd, 'hf-vitmae', num_heads=4)
    assert config['architectures'] == ['ViTMAEModel']
    write_hf_folder(str(tmp_path), config, tensors)
    load_hf(ViTMAEModel, str(tmp_path))


BEIT_BACKBONES = {
    # BEiT / BEiT v2 pretraining: shared table, mask token, layer scale, final norm
    'beit-pretrain': dict(type='BEiTViT', arch=TINY, img_size=32, patch_size=8),
    # BEiT fine-tuning: a table per layer, mean pooling through fc_norm
    'beit-finetune': dict(type='ViT', arch=TINY, img_size=32, patch_size=8, pos_embed=None,
                          qkv_bias=False, qv_bias=True, rel_pos_bias='per_layer',
                          layer_scale_init_value=0.1, out_type='avg_featmap'),
    # CAE: sin-cos absolute positions, no relative bias (heads given)
    'cae': dict(type='CAEViT', arch=TINY, img_size=32, patch_size=8),
}


@pytest.mark.parametrize('dst_format,cls', [('hf-beit', BeitModel),
                                            ('hf-data2vec-vision', Data2VecVisionModel)])
@pytest.mark.parametrize('name', sorted(BEIT_BACKBONES))
def test_beit_backbones_export(name, dst_format, cls, tmp_path):
    vit = randomize(build(BEIT_BACKBONES[name]))
    config, sd, dropped = to_hf({'backbone.' + k: v for k, v in vit.state_dict().items()},
                                dst_format, num_heads=4)
    assert dropped == []
    write_hf_folder(str(tmp_path), config, sd)
    hf = load_hf(cls, str(tmp_path), add_pooling_layer=True)
    x = images()
    with torch.no_grad():
        out, ref = hf(pixel_values=x), vit(x)[-1]
    if ref.ndim == 2:  # mean-pooled through fc_norm
        assert max_diff(out.pooler_output, ref) <= 1e-5
    else:
        assert max_diff(out.last_hidden_state, ref) <= 1e-5
        assert max_diff(out.pooler_output, ref[:, 0]) <= 1e-5


def test_a_key_bias_is_dropped_for_beit_with_the_reason(tmp_path):
    """A plain ViT (fused qkv bias) in BEiT's layout: softmax ignores the key bias."""
    vit = randomize(build(dict(type='ViT', arch=TINY, img_size=32, patch_size=8, out_type='raw')))
    config, sd, dropped = to_hf({'backbone.' + k: v for k, v in vit.state_dict().items()},
                                'hf-beit', num_heads=4)
    assert [k for k, _ in dropped] == [f'backbone.blocks.{i}.attn.qkv.bias[key]' for i in (0, 1)]
    assert 'softmax' in dropped[0][1]
    write_hf_folder(str(tmp_path), config, sd)
    hf = load_hf(BeitModel, str(tmp_path))
    x = images()
    with torch.no_grad():
        assert max_diff(hf(pixel_values=x).last_hidden_state, vit(x)[-1]) <= 1e-5


def hf_mae():
    config = ViTMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, image_size=32, patch_size=8,
                          decoder_hidden_size=24, decoder_num_hidden_layers=2,
                          decoder_num_attention_heads=2, decoder_intermediate_size=48,
                          layer_norm_eps=1e-6, norm_pix_loss=True)
    return ViTMAEForPreTraining(config)


def hf_beit_classifier():
    config = BeitConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, image_size=32, patch_size=8, layer_norm_eps=1e-6,
                        use_absolute_position_embeddings=True,
                        use_shared_relative_position_bias=True, use_mean_pooling=True,
                        num_labels=5)
    return BeitForImageClassification(config)


def hf_data2vec():
    config = Data2VecVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, image_size=32, patch_size=8,
                                  layer_norm_eps=1e-6, use_relative_position_bias=True,
                                  use_mask_token=True, use_mean_pooling=False)
    return Data2VecVisionModel(config, add_pooling_layer=False)


@pytest.mark.parametrize('make', [hf_mae, hf_beit_classifier, hf_data2vec])
def test_transformers_models_import(make, tmp_path):
    hf = randomize(make().eval())
    hf.save_pretrained(str(tmp_path))
    config, sd = read_hf_folder(str(tmp_path))
    converted = from_hf(config, sd)
    parts = hf_model_cfg(config, converted.state_dict)
    x = images()
    if 'neck' in parts:  # ViTMAEForPreTraining -> MAE
        mae = build(dict(type='MAE', **parts))
        mae.load_state_dict(converted.state_dict, strict=True)
        noise = torch.rand(2, 16, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            out = hf(pixel_values=x, noise=noise)
            pred, mask = mae.forward_train(x, noise)
            assert max_diff(out.logits, pred) <= 1e-5
            assert abs(out.loss.item() - mae.head.loss(pred, x, mask).item()) <= 1e-5
        return
    vit = build(parts['backbone'])
    vit.load_state_dict({k[len('backbone.'):]: v for k, v in converted.state_dict.items()},
                        strict=True)
    base = getattr(hf, 'beit', hf)
    with torch.no_grad():
        out, ref = base(pixel_values=x), vit(x)[-1]
    if isinstance(hf, BeitForImageClassification):
        assert sorted(k for k, _ in converted.dropped) == ['classifier.bias', 'classifier.weight']
        assert max_diff(out.pooler_output, ref) <= 1e-5
    else:
        assert max_diff(out.last_hidden_state, ref) <= 1e-5


def test_beit_mim_models_final_norm_is_the_backbones(tmp_path):
    """BeitForMaskedImageModeling (mean pooling): the encoder's final norm is outside ``beit.``."""
    config = BeitConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, image_size=32, patch_size=8, layer_norm_eps=1e-6,
                        use_shared_relative_position_bias=True, use_mask_token=True,
                        use_mean_pooling=True, vocab_size=16)
    hf = randomize(BeitForMaskedImageModeling(config).eval())
    hf.save_pretrained(str(tmp_path))
    converted = from_hf(*read_hf_folder(str(tmp_path)))
    assert sorted(k for k, _ in converted.dropped) == ['lm_head.bias', 'lm_head.weight']
    parts = hf_model_cfg(hf.config.to_dict(), converted.state_dict)
    vit = build(parts['backbone'])
    vit.load_state_dict({k[len('backbone.'):]: v for k, v in converted.state_dict.items()},
                        strict=True)
    x = images()
    with torch.no_grad():
        ref = hf.layernorm(hf.beit(pixel_values=x).last_hidden_state)
        assert max_diff(vit(x)[-1], ref) <= 1e-5


def convert_tool():
    path = osp.join(REPO, 'tools', 'model_converters', 'convert.py')
    spec = importlib.util.spec_from_file_location('mmmim_convert_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_tool_round_trip_through_a_folder(tmp_path, capsys):
    """mmmim checkpoint -> HF folder (heads from --config) -> mmmim checkpoint, bit-exact."""
    mae = randomize(build(MAE_CFG))
    ckpt, folder, back = (str(tmp_path / n) for n in ('mae.pth', 'hf', 'back.pth'))
    torch.save(dict(state_dict=mae.state_dict(), meta=dict(epoch=1)), ckpt)
    config = tmp_path / 'config.py'
    config.write_text(f'model = {MAE_CFG!r}\n')
    tool = convert_tool()
    tool.main([ckpt, folder, '--dst-format', 'hf-vitmae', '--config', str(config)])
    assert 'ViTMAEForPreTraining' in capsys.readouterr().out
    load_hf(ViTMAEForPreTraining, folder)
    with pytest.raises(SystemExit, match='--force'):
        tool.main([ckpt, folder, '--dst-format', 'hf-vitmae', '--config', str(config)])
    tool.main([folder, back])
    out = capsys.readouterr().out
    assert "'decoder_num_heads': 2" in out  # the model parts that hold the weights
    sd = torch.load(back, weights_only=True)['state_dict']
    ref = mae.state_dict()
    assert sd.keys() == ref.keys()
    assert all(torch.equal(sd[k], ref[k]) for k in ref)


def test_export_errors_name_the_option_or_layout():
    vit = build(dict(type='ViT', arch=TINY, img_size=32, patch_size=8))
    sd = {'backbone.' + k: v for k, v in vit.state_dict().items()}
    with pytest.raises(ValueError, match='--num-heads'):
        to_hf(sd, 'hf-beit')
    beit = build(BEIT_BACKBONES['beit-pretrain'])
    with pytest.raises(KeyError, match='hf-beit'):
        to_hf({'backbone.' + k: v for k, v in beit.state_dict().items()}, 'hf-vitmae')
    with pytest.raises(ValueError, match='hf-vitmae'):
        to_hf(sd, 'hf-vit')
