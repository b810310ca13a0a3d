"""Official / timm / mmpretrain / mmseg layouts -> mmmim, checked by numbers."""
import copy
import importlib.util
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

import mmmim.checkpoint.io as ckpt_io
from mmmim.checkpoint import (detect_format, load_pretrained, read_checkpoint, to_mmmim,
                              to_mmseg, to_timm, unwrap, write_checkpoint)
from mmmim.models import ViT

from ..conftest import REPO, run_tool
from ..test_models.test_mae import OfficialMAE, tiny_mae

TINY = dict(embed_dim=64, depth=3, num_heads=4, mlp_ratio=4.0)
BEIT_OPTS = dict(pos_embed=None, qv_bias=True, layer_scale_init_value=0.1)


def jitter(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()  # some OpenMMLab backbones' train() returns None
    return model


def timm_vit(img_size=32):
    torch.manual_seed(0)
    return jitter(timm.models.vision_transformer.VisionTransformer(
        img_size=img_size, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=0,
        global_pool='token'))


def timm_beit(shared=True):
    torch.manual_seed(0)
    return jitter(timm.models.beit.Beit(
        img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=0,
        global_pool='', use_fc_norm=False, init_values=0.1, use_abs_pos_emb=False,
        use_rel_pos_bias=not shared, use_shared_rel_pos_bias=shared))


def official_beit_file(path, ref):
    """A BEiT pretraining file as the official repo writes it."""
    sd = dict(ref.state_dict())
    sd['rel_pos_bias.relative_position_index'] = ref.rel_pos_bias.relative_position_index
    sd['mask_token'] = torch.randn(1, 1, 64)
    sd['lm_head.weight'] = torch.randn(8192, 64)
    sd['lm_head.bias'] = torch.zeros(8192)
    torch.save({'model': sd}, path)
    return sd


def diff(a, b):
    return (a - b).abs().max().item()


def test_official_mae_encoder_via_init_cfg(tmp_path):
    ref = timm_vit()
    path = str(tmp_path / 'mae_pretrain_vit_tiny.pth')
    torch.save({'model': ref.state_dict()}, path)
    model = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw',
                init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert diff(model.eval()(x)[0], ref.forward_features(x)) <= 1e-5


def test_official_mae_full_checkpoint_gives_the_same_loss(tmp_path):
    torch.manual_seed(0)
    ref = OfficialMAE()
    jitter(ref)
    path = str(tmp_path / 'mae_visualize_full.pth')
    torch.save({'model': ref.state_dict()}, path)
    converted = to_mmmim(read_checkpoint(path))
    assert converted.src_format == 'official'
    model = tiny_mae()
    model.load_state_dict(converted.state_dict, strict=True)
    imgs, noise = torch.randn(2, 3, 32, 32), torch.rand(2, 16)
    ref_loss = ref(imgs, 0.75, noise)[0]
    assert abs(model.loss(imgs, noise=noise)['loss'].item() - ref_loss.item()) < 1e-6


def test_beit_pretraining_file_loads_per_layer_with_expansion(tmp_path):
    ref = timm_beit(shared=True)
    path = str(tmp_path / 'beit_tiny_pt22k.pth')
    official_beit_file(path, ref)
    # fine-tuning model: one table per layer, initialised from the shared one
    model = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw', rel_pos_bias='per_layer',
                **BEIT_OPTS)
    report = load_pretrained(model, path)
    assert report['unexpected'] == ['mask_token']
    assert {'lm_head.weight', 'rel_pos_bias.relative_position_index'} <= set(report['dropped'])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert diff(model(x)[0], ref.forward_features(x)) <= 1e-5
    assert report['notes'] == ['expanded the shared relative position table into 3 layers']


def test_224_checkpoint_at_512_resizes_tables_and_same_size_is_identical(tmp_path):
    ref = timm_beit(shared=False)
    path = str(tmp_path / 'beit_ft.pth')
    torch.save({'model': ref.state_dict()}, path)
    big = ViT(arch=TINY, img_size=64, patch_size=8, rel_pos_bias='per_layer', out_type='raw',
              **BEIT_OPTS).eval()
    load_pretrained(big, path)
    assert big.blocks[0].attn.relative_position_bias_table.shape == (15 * 15 + 3, 4)
    # timm's own loader (geometric resize of the tables) is the reference at 64x64
    ref_big = timm.models.beit.Beit(img_size=64, patch_size=8, embed_dim=64, depth=3, num_heads=4,
                                    num_classes=0, global_pool='', use_fc_norm=False,
                                    init_values=0.1, use_abs_pos_emb=False,
                                    use_rel_pos_bias=True).eval()
    ref_big.load_state_dict(timm.models.beit.checkpoint_filter_fn(ref.state_dict(), ref_big))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert diff(big(x)[0], ref_big.forward_features(x)) <= 1e-5
    same = ViT(arch=TINY, img_size=32, patch_size=8, rel_pos_bias='per_layer', **BEIT_OPTS)
    load_pretrained(same, path)
    for k, v in ref.state_dict().items():
        if 'relative_position_index' not in k:
            assert torch.equal(same.state_dict()[k], v), k
    vit = timm_vit()
    path = str(tmp_path / 'vit.pth')
    torch.save(vit.state_dict(), path)
    big = ViT(arch=TINY, img_size=64, patch_size=8)
    load_pretrained(big, path)
    assert big.pos_embed.shape == (1, 65, 64)


@pytest.mark.parametrize('kind', ['VisionTransformer', 'MAEViT', 'BEiTViT'])
def test_mmpretrain_checkpoints_match_mmpretrain_forward(kind, tmp_path):
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    arch = dict(embed_dims=64, num_layers=3, num_heads=4, feedforward_channels=256)
    cfg = dict(type=kind, arch=arch, img_size=32, patch_size=8, out_type='raw', final_norm=True)
    opts = dict(out_type='raw')
    if kind == 'BEiTViT':
        cfg.update(use_abs_pos_emb=False, use_rel_pos_bias=True, layer_scale_init_value=0.1)
        opts.update(rel_pos_bias='per_layer', **BEIT_OPTS)
    torch.manual_seed(0)
    ref = jitter(PRETRAIN_MODELS.build(cfg))
    path = str(tmp_path / 'mmpretrain.pth')
    torch.save({'state_dict': {'backbone.' + k: v for k, v in ref.state_dict().items()}}, path)
    assert detect_format(torch.load(path)['state_dict']) == 'openmmlab'
    model = ViT(arch=TINY, img_size=32, patch_size=8, **opts)
    load_pretrained(model, path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = ref(x, None) if kind == 'MAEViT' else ref(x)  # MAEViT: no masking
        assert diff(model.eval()(x)[0], out[-1]) <= 1e-5


def test_mmpretrain_mae_decoder_maps_to_neck():
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    neck = PRETRAIN_MODELS.build(dict(type='MAEPretrainDecoder', num_patches=16, patch_size=8,
                                      embed_dim=64, decoder_embed_dim=32, decoder_depth=2,
                                      decoder_num_heads=4))
    sd = {'neck.' + k: v for k, v in neck.state_dict().items()}
    sd.update({'backbone.' + k: v for k, v in timm_vit().state_dict().items()})
    sd = {k.replace('backbone.patch_embed.proj.', 'backbone.patch_embed.projection.'): v
          for k, v in sd.items()}
    model = tiny_mae()
    converted = to_mmmim({'state_dict': sd}, 'openmmlab')
    neck_keys = {k for k in converted.state_dict if k.startswith('neck.')}
    assert neck_keys == {k for k in model.state_dict() if k.startswith('neck.')}


def test_export_to_mmseg_matches_mmseg_beit(tmp_path):
    from mmseg.models.backbones import BEiT as MMSegBEiT
    ref = timm_beit(shared=True)
    src = str(tmp_path / 'beit_pt.pth')
    official_beit_file(src, ref)
    dst = str(tmp_path / 'beit_mmseg.pth')
    run_tool([sys.executable, 'tools/model_converters/beit2mmseg.py', src, dst])
    sd = torch.load(dst)
    assert all(k.startswith('backbone.') for k in sd)
    seg = MMSegBEiT(img_size=32, patch_size=8, embed_dims=64, num_layers=3, num_heads=4,
                    mlp_ratio=4, out_indices=[2], init_values=0.1,
                    norm_cfg=dict(type='LN', eps=1e-6))  # official eps (mmseg's default: 1e-5)
    seg.eval()
    missing, unexpected = seg.load_state_dict(
        {k[len('backbone.'):]: v for k, v in sd.items()}, strict=False)
    assert all('relative_position_index' in k for k in missing)
    assert set(unexpected) == {'mask_token', 'norm.weight', 'norm.bias'}  # no place in mmseg's BEiT
    ours = ViT(arch=TINY, img_size=32, patch_size=8, rel_pos_bias='per_layer', out_type='featmap',
               final_norm=False, **BEIT_OPTS).eval()
    load_pretrained(ours, dst)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert diff(ours(x)[0], seg(x)[0]) <= 1e-5


def test_round_trips_are_lossless():
    ref = timm_beit(shared=False)
    sd = {k: v for k, v in ref.state_dict().items() if 'relative_position_index' not in k}
    mm = to_mmmim({'model': sd}).state_dict
    back = to_timm(mm)
    assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd)
    again = to_mmmim(to_mmseg(mm)).state_dict
    assert again.keys() == mm.keys() and all(torch.equal(again[k], mm[k]) for k in mm)


def test_unexpected_keys_fail_loudly(tmp_path):
    sd = dict(timm_vit().state_dict())
    sd['blocks.0.attn.extra_scale'] = torch.ones(1)
    path = str(tmp_path / 'odd.pth')
    torch.save(sd, path)
    model = ViT(arch=TINY, img_size=32, patch_size=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(KeyError, match='extra_scale'):
        load_pretrained(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # a BEiT file into a model without relative position bias: missing / unexpected named
    beit = str(tmp_path / 'beit.pth')
    torch.save(timm_beit(shared=False).state_dict(), beit)
    with pytest.raises(KeyError, match='relative_position_bias_table'):
        load_pretrained(ViT(arch=TINY, img_size=32, patch_size=8), beit)


def test_bad_files_give_clear_errors(tmp_path):
    good = str(tmp_path / 'good.pth')
    torch.save({'model': timm_vit().state_dict()}, good)
    truncated = str(tmp_path / 'truncated.pth')
    with open(good, 'rb') as f, open(truncated, 'wb') as g:
        g.write(f.read()[:1000])
    with pytest.raises(ValueError, match='truncated.pth'):
        read_checkpoint(truncated)
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(ValueError, match='notes.pth'):
        read_checkpoint(str(text))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        read_checkpoint(str(tmp_path / 'missing.pth'))
    pickled = str(tmp_path / 'pickled.pth')
    torch.save({'model': timm_vit()}, pickled)  # a whole module, pickled
    with pytest.raises(ValueError, match='allow'):
        read_checkpoint(pickled)
    assert isinstance(read_checkpoint(pickled, allow_pickle=True)['model'], torch.nn.Module)
    with pytest.raises(ConnectionError, match='local file'):
        read_checkpoint('http://127.0.0.1:9/mae_pretrain_vit_base.pth')


def test_writes_are_atomic_and_never_overwrite(tmp_path):
    dst = str(tmp_path / 'out.pth')
    write_checkpoint({'state_dict': {'a': torch.ones(1)}}, dst)
    with pytest.raises(FileExistsError, match='force'):
        write_checkpoint({'state_dict': {'a': torch.zeros(1)}}, dst)
    assert torch.equal(torch.load(dst)['state_dict']['a'], torch.ones(1))

    class Unpicklable:
        def __reduce__(self):
            raise pickle.PicklingError('no')

    with pytest.raises(pickle.PicklingError):
        write_checkpoint({'x': Unpicklable()}, dst, force=True)
    assert torch.equal(torch.load(dst)['state_dict']['a'], torch.ones(1))
    assert os.listdir(tmp_path) == ['out.pth']  # no temporary file left


def test_converter_cli_and_safetensors(tmp_path):
    src = str(tmp_path / 'mae_pretrain.pth')
    sd = timm_vit().state_dict()
    torch.save({'model': sd}, src)
    mm = str(tmp_path / 'mae.safetensors')
    proc = run_tool([sys.executable, 'tools/model_converters/convert.py', src, mm])
    assert 'official layout' in proc.stdout
    st = read_checkpoint(mm)
    assert set(st) == {'backbone.' + k for k in sd}
    back = str(tmp_path / 'timm.pth')
    run_tool([sys.executable, 'tools/model_converters/convert.py', mm, back, '--dst-format',
              'timm'])
    out = torch.load(back)['model']
    assert all(torch.equal(out[k], sd[k]) for k in sd)
    again = subprocess.run([sys.executable, 'tools/model_converters/convert.py', src, mm],
                           cwd=REPO, capture_output=True, text=True)
    assert again.returncode != 0 and '--force' in again.stderr


def convert_tool():
    """tools/model_converters/convert.py as a module, to run it in this process."""
    spec = importlib.util.spec_from_file_location(
        'convert_tool', osp.join(REPO, 'tools', 'model_converters', 'convert.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('ext', ['.pth', '.safetensors'])
@pytest.mark.parametrize('dst_format', ['mmmim', 'timm', 'mmseg'])
def test_every_export_reads_back_to_the_source_tensors(dst_format, ext, tmp_path, capsys):
    sd = timm_vit().state_dict()
    src = str(tmp_path / 'mae_pretrain_vit_tiny.pth')
    torch.save({'model': sd}, src)
    dst = str(tmp_path / f'out{ext}')
    convert_tool().main([src, dst, '--dst-format', dst_format])
    if ext == '.safetensors':
        out = load_file(dst)  # a flat tensor file
        if dst_format == 'mmmim':
            with safe_open(dst, 'pt') as f:
                assert f.metadata() == {'converted_from': 'official', 'source': src}
    else:
        out = unwrap(torch.load(dst))
    if dst_format == 'timm':
        timm_vit().load_state_dict(out, strict=True)
    back = to_timm(to_mmmim(out).state_dict)
    assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd)


def test_converting_a_large_file_prints_a_few_lines(tmp_path, monkeypatch, capsys):
    src = str(tmp_path / 'mae_pretrain.pth')
    sd = dict(timm_vit().state_dict(), **{'head.weight': torch.zeros(1 << 16, 64),
                                          'head.bias': torch.zeros(1 << 16)})  # 16 MiB
    torch.save({'model': sd}, src)
    mib = -(-osp.getsize(src) >> 20)
    monkeypatch.setattr(ckpt_io, 'PROGRESS_MIN_BYTES', 1 << 20)  # a "large" file
    convert_tool().main([src, str(tmp_path / 'out.pth'), '--dst-format', 'timm'])
    out = capsys.readouterr().out
    assert '\r' not in out and len(out.splitlines()) == 4, out  # read: start, end; summary; wrote
    assert f'{mib}/{mib} MiB' in out


def cae_sincos(side, dim):
    """CAE's fixed position table for a square grid: sin / cos of the row index in the first
    half of the channels, of the column index in the second; zeros for the class token."""
    omega = 1.0 / 10000**(torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    rows = torch.arange(side).repeat_interleave(side).float()[:, None] * omega  # token r * side + c
    cols = torch.arange(side).repeat(side).float()[:, None] * omega
    table = torch.cat([rows.sin(), rows.cos(), cols.sin(), cols.cos()], dim=1)
    return torch.cat([torch.zeros(1, dim), table]).unsqueeze(0)  # [1, 1 + side^2, dim]


def timm_cae_encoder(**kwargs):
    """timm's Beit with an absolute position table and no relative bias: CAE's encoder."""
    torch.manual_seed(0)
    opts = dict(global_pool='', use_fc_norm=False)
    opts.update(kwargs)
    enc = jitter(timm.models.beit.Beit(
        img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=0,
        init_values=0.1, use_abs_pos_emb=True, use_rel_pos_bias=False, **opts))
    with torch.no_grad():
        enc.pos_embed.copy_(cae_sincos(4, 64))
    return enc


class CAERegressorBlock(nn.Module):
    """The official CAE cross-attention block's parameter names (values are random)."""

    def __init__(self, dim):
        super().__init__()
        self.cross_attn = nn.Module()
        for name in ('q', 'k', 'v', 'proj'):
            setattr(self.cross_attn, name, nn.Linear(dim, dim, bias=name == 'proj'))
        self.cross_attn.q_bias = nn.Parameter(torch.zeros(dim))
        self.cross_attn.v_bias = nn.Parameter(torch.zeros(dim))
        for name in ('norm1_q', 'norm1_k', 'norm1_v', 'norm2_cross'):
            setattr(self, name, nn.LayerNorm(dim))
        self.mlp_cross = nn.Sequential()
        self.mlp_cross.fc1, self.mlp_cross.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.gamma_1_cross = nn.Parameter(torch.ones(dim))
        self.gamma_2_cross = nn.Parameter(torch.ones(dim))


class CAEHead(nn.Module):
    """Regressor or decoder of the official CAE: blocks, a norm, optionally a token head."""

    def __init__(self, dim, blocks_name, block, head=False):
        super().__init__()
        setattr(self, blocks_name, nn.ModuleList([block]))
        self.norm = nn.LayerNorm(dim)
        if head:
            self.head = nn.Linear(dim, 32)


def cae_decoder_block(dim):
    return timm.models.beit.Block(dim, 4, qkv_bias=True, init_values=0.1)


class OfficialCAE(nn.Module):
    """The module tree of the official CAE pretraining model (``model`` of its files).

    ``current``: Atten4Vis/CAE today (``alignment_encoder``, ``encoder_to_regresser``
    and its norm when the regressor is narrower, ``regresser``, ``decoder``);
    otherwise the earlier release (``teacher``, ``encoder_to_decoder``,
    ``pretext_neck`` holding regressor and decoder).
    """

    def __init__(self, encoder, current=True, decoder_dim=48):
        super().__init__()
        dim = encoder.embed_dim
        self.encoder = encoder
        target = copy.deepcopy(encoder).requires_grad_(False)
        proj = 'encoder_to_regresser' if current else 'encoder_to_decoder'
        setattr(self, proj, nn.Linear(dim, decoder_dim))
        setattr(self, proj + '_norm', nn.LayerNorm(decoder_dim))
        self.rd_pos_embed = nn.Parameter(torch.zeros(1, 17, decoder_dim), requires_grad=False)
        regressor = CAEHead(decoder_dim, 'regressor_blocks', CAERegressorBlock(decoder_dim))
        decoder = CAEHead(decoder_dim, 'decoder_blocks', cae_decoder_block(decoder_dim), head=True)
        if current:
            self.alignment_encoder, self.regresser, self.decoder = target, regressor, decoder
        else:
            self.teacher = target
            self.pretext_neck = nn.ModuleDict(dict(regressor=regressor, decoder=decoder))
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim))


def official_cae_file(path, encoder, current=True):
    """A CAE pretraining file as the official script writes it (random regressor / decoder)."""
    sd = OfficialCAE(copy.deepcopy(encoder), current).state_dict()
    torch.save({'model': sd, 'epoch': 799}, path)
    return sd


@pytest.mark.parametrize('current', [True, False], ids=['current', 'earlier'])
def test_official_cae_file_gives_the_encoder_features(current, tmp_path):
    ref = timm_cae_encoder()
    path = str(tmp_path / 'cae_base_800e_checkpoint-799.pth')
    sd = official_cae_file(path, ref, current)
    converted = to_mmmim(read_checkpoint(path))
    assert converted.src_format == 'cae'
    assert set(converted.state_dict) == {'backbone.' + k for k in ref.state_dict()}
    reasons = dict(converted.dropped)
    assert set(reasons) == {k for k in sd if not k.startswith('encoder.')}
    target = 'alignment_encoder' if current else 'teacher'
    assert 'stop-gradient copy' in reasons[f'{target}.blocks.0.attn.qkv.weight']
    proj = 'encoder_to_regresser' if current else 'encoder_to_decoder'
    assert 'projection' in reasons[f'{proj}_norm.weight']
    assert 'query token' in reasons['mask_token']
    model = ViT(arch=TINY, img_size=32, patch_size=8, pos_embed='sincos', qv_bias=True,
                layer_scale_init_value=0.1, out_type='raw',
                init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert diff(model.eval()(x)[0], ref.forward_features(x)) <= 1e-5
    assert not model.pos_embed.requires_grad  # CAE's table stays fixed, as loaded
    assert torch.equal(model.pos_embed, ref.pos_embed)


def test_cae_layout_errors_name_the_key(tmp_path):
    sd = official_cae_file(str(tmp_path / 'cae.pth'), timm_cae_encoder())
    with pytest.raises(KeyError, match='quantize.embedding.weight'):
        to_mmmim(dict(sd, **{'quantize.embedding.weight': torch.zeros(8, 4)}))
    with pytest.raises(KeyError, match='encoder.extra_scale'):
        to_mmmim(dict(sd, **{'encoder.extra_scale': torch.ones(1)}))


def test_beitv2_pretraining_file_drops_its_pretraining_parts(tmp_path):
    ref = timm_beit(shared=True)
    torch.manual_seed(1)
    cls_pt = timm.models.beit.Beit(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4,
                                   num_classes=0, init_values=0.1, use_abs_pos_emb=False)
    path = str(tmp_path / 'beitv2_tiny_patch8_32_pt1k.pth')
    sd = dict(ref.state_dict())
    sd['rel_pos_bias.relative_position_index'] = ref.rel_pos_bias.relative_position_index
    sd['mask_token'] = torch.randn(1, 1, 64)
    sd['lm_head.weight'], sd['lm_head.bias'] = torch.randn(8192, 64), torch.zeros(8192)
    sd.update({'cls_pt_layers.' + k[len('blocks.'):]: v
               for k, v in cls_pt.state_dict().items() if k.startswith('blocks.')})
    torch.save({'model': sd}, path)
    model = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw', rel_pos_bias='per_layer',
                **BEIT_OPTS)
    report = load_pretrained(model, path)
    assert report['unexpected'] == ['mask_token']
    pt_parts = {k for k in sd if k.startswith(('cls_pt_layers.', 'lm_head.'))}
    assert len(pt_parts) > 20 and pt_parts <= set(report['dropped'])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert diff(model(x)[0], ref.forward_features(x)) <= 1e-5
