import numpy as np
import pytest
import timm
import torch

from mmmim.models import MAEViT, ViT
from mmmim.models.layers import sincos_2d

TINY = dict(embed_dim=64, depth=3, num_heads=4, mlp_ratio=4.0)


def max_diff(a, b):
    return (a - b).abs().max().item()


def official_sincos(embed_dim, grid_size, cls_token):
    """The MAE repository's numpy construction, written out from its structure."""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # w goes first
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])

    def one_d(dim, pos):
        omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
        omega = 1.0 / 10000**omega
        out = np.einsum('m,d->md', pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    emb = np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)
    return emb


def test_sincos_matches_official_construction():
    ours = sincos_2d((14, 14), 768, num_extra_tokens=1)[0].numpy()
    ref = official_sincos(768, 14, cls_token=True)
    assert ours.shape == ref.shape == (197, 768)
    assert np.abs(ours - ref).max() < 1e-6


def timm_vit(img_size=32, patch_size=8):
    torch.manual_seed(0)
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=img_size, patch_size=patch_size, embed_dim=64, depth=3, num_heads=4,
        qkv_bias=True, num_classes=0, global_pool='token').eval()
    with torch.no_grad():  # make every parameter non-trivial
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return ref


@pytest.mark.parametrize('cls', [ViT, MAEViT])
def test_official_mae_encoder_layout_loads_strict_and_matches(cls):
    ref = timm_vit()
    sd = ref.state_dict()
    model = cls(arch=TINY, img_size=32, patch_size=8, out_type='raw').eval()
    model.load_state_dict(sd, strict=True)  # no renaming
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(model(x)[0], ref.forward_features(x)) <= 1e-5


@pytest.mark.parametrize('shared', [False, True])
def test_beit_options_match_timm_beit(shared):
    torch.manual_seed(0)
    ref = timm.models.beit.Beit(
        img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=0,
        global_pool='', use_fc_norm=False, init_values=0.1, use_abs_pos_emb=False,
        use_rel_pos_bias=not shared, use_shared_rel_pos_bias=shared).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sd = {k: v for k, v in ref.state_dict().items() if not k.endswith('relative_position_index')}
    model = ViT(arch=TINY, img_size=32, patch_size=8, pos_embed=None, qv_bias=True,
                rel_pos_bias='shared' if shared else 'per_layer', layer_scale_init_value=0.1,
                out_type='raw').eval()
    model.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(model(x)[0], ref.forward_features(x)) <= 1e-5


def test_pos_embed_resized_on_load_and_identity_at_same_size():
    ref = timm_vit()
    sd = ref.state_dict()  # 4x4 grid
    big = ViT(arch=TINY, img_size=64, patch_size=8, out_type='raw')
    big.load_state_dict(dict(sd), strict=True)
    assert big.pos_embed.shape == (1, 1 + 64, 64)
    assert torch.equal(big.pos_embed[:, 0], sd['pos_embed'][:, 0])  # class token kept
    same = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw')
    same.load_state_dict(dict(sd), strict=True)
    assert torch.equal(same.pos_embed, sd['pos_embed'])


def test_other_input_size_interpolates_learned_table():
    model = ViT(arch=TINY, img_size=32, patch_size=8, out_type='featmap').eval()
    out = model(torch.randn(1, 3, 48, 64))[0]
    assert out.shape == (1, 64, 6, 8)
    # the 4x4 table resized to 4x4 is the table itself
    assert torch.equal(model.pos_embed_for((4, 4)), model.pos_embed)


def test_out_indices_featmaps_and_final_norm_only_on_last():
    model = ViT(arch=TINY, img_size=32, patch_size=8, out_type='featmap', out_indices=[0, 1, 2]).eval()
    x = torch.randn(2, 3, 32, 32)
    outs = model(x)
    assert [o.shape for o in outs] == [(2, 64, 4, 4)] * 3
    raw = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw', out_indices=[0, 2]).eval()
    raw.load_state_dict(model.state_dict())
    with torch.no_grad():
        tokens, _ = raw.embed_patches(x)
        t = raw.prepend_cls_token(tokens)
        t0 = raw.blocks[0](t)
        last = raw.norm(raw.blocks[2](raw.blocks[1](t0)))
        o0, o2 = raw(x)
    assert max_diff(o0, t0) == 0 and max_diff(o2, last) < 1e-6
    assert max_diff(outs[0], t0[:, 1:].transpose(1, 2).reshape(2, 64, 4, 4)) == 0


def test_avg_featmap_uses_fc_norm_and_no_final_norm():
    model = ViT(arch=TINY, img_size=32, patch_size=8, out_type='avg_featmap')
    names = {k for k, _ in model.named_parameters()}
    assert 'fc_norm.weight' in names and 'norm.weight' not in names
    assert model(torch.randn(2, 3, 32, 32))[0].shape == (2, 64)


def test_get_layer_depth():
    model = ViT(arch=TINY, img_size=32, patch_size=8)
    expected = {
        'backbone.cls_token': 0, 'backbone.pos_embed': 0, 'backbone.patch_embed.proj.weight': 0,
        'backbone.blocks.0.attn.qkv.weight': 1, 'backbone.blocks.2.mlp.fc2.bias': 3,
        'backbone.norm.weight': 4, 'head.fc.weight': 4,
    }
    for name, depth in expected.items():
        assert model.get_layer_depth(name, prefix='backbone.') == (depth, 5), name


def test_activation_checkpointing_gives_same_output_and_grads():
    torch.manual_seed(0)
    a = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw')
    b = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw', with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    ya, yb = a(x)[0], b(x)[0]
    ya.square().sum().backward()
    yb.square().sum().backward()
    assert max_diff(ya, yb) == 0
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        if pa.grad is not None:
            assert max_diff(pa.grad, pb.grad) < 1e-6, n


@pytest.mark.parametrize('with_cp, checkpointed', [(True, 3), (2, 2), (False, 0)])
def test_activation_checkpointing_of_the_last_blocks(monkeypatch, with_cp, checkpointed):
    """An int checkpoints the last N blocks, as BLIP's ``vit_ckpt_layer``; never in eval."""
    import mmmim.models.backbones.vit as vit
    calls = []
    monkeypatch.setattr(vit, 'checkpoint', lambda blk, *a, **kw: calls.append(blk) or blk(*a))
    model = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw', with_cp=with_cp)
    model(torch.randn(1, 3, 32, 32))
    assert calls == list(model.blocks)[len(model.blocks) - checkpointed:]
    model.eval()
    calls.clear()
    model(torch.randn(1, 3, 32, 32))
    assert calls == []


def test_drop_path_is_stochastic_in_train_and_identity_in_eval():
    model = ViT(arch=TINY, img_size=32, patch_size=8, out_type='raw', drop_path_rate=0.5)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    assert max_diff(model(x)[0], model(x)[0]) > 0
    model.eval()
    assert max_diff(model(x)[0], model(x)[0]) == 0


def test_bad_options_are_named():
    with pytest.raises(KeyError, match='giant'):
        ViT(arch='giant')
    with pytest.raises(ValueError, match='pos_embed'):
        ViT(arch=TINY, pos_embed='rope')
    with pytest.raises(ValueError, match='divisible'):
        ViT(arch=TINY, img_size=32, patch_size=8)(torch.randn(1, 3, 30, 32))


@pytest.mark.parametrize('mode', ['shared', 'per_layer'])
def test_relative_position_bias_at_other_input_sizes_matches_timm(mode):
    """At a 6x3 grid the 4x4 tables are resized on the fly as timm resizes them on load."""
    from timm.layers import resize_rel_pos_bias_table
    torch.manual_seed(0)
    model = ViT(arch=TINY, img_size=32, patch_size=8, pos_embed=None, qv_bias=True,
                rel_pos_bias=mode, layer_scale_init_value=0.1, out_type='raw').eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('relative_position_bias_table'):
                p.normal_(0, 0.5)  # tables that the softmax can see
    ref = timm.models.beit.Beit(
        img_size=(48, 24), patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=0,
        global_pool='', use_fc_norm=False, init_values=0.1, use_abs_pos_emb=False,
        use_rel_pos_bias=mode == 'per_layer', use_shared_rel_pos_bias=mode == 'shared').eval()
    target = ref.state_dict()
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith('relative_position_bias_table'):
            v = resize_rel_pos_bias_table(v, (6, 3), target[k].shape, old_window_size=(4, 4))
        sd[k] = v
    ref.load_state_dict({**{k: v for k, v in target.items() if k.endswith('_index')}, **sd})
    x = torch.randn(2, 3, 48, 24)
    with torch.no_grad():
        assert max_diff(model(x)[0], ref.forward_features(x)) <= 1e-5


def test_frozen_stages_freeze_and_stay_in_eval():
    model = ViT(arch=TINY, img_size=32, patch_size=8, drop_path_rate=0.5, frozen_stages=3)
    model.train()
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.blocks[2].training
    x = torch.randn(2, 3, 32, 32)
    assert max_diff(model(x)[0], model(x)[0]) == 0  # no drop path in frozen blocks
    partial = ViT(arch=TINY, img_size=32, patch_size=8, frozen_stages=1)
    trainable = {n for n, p in partial.named_parameters() if p.requires_grad}
    assert 'blocks.1.attn.qkv.weight' in trainable and 'norm.weight' in trainable
    assert 'blocks.0.attn.qkv.weight' not in trainable and 'pos_embed' not in trainable


def test_clip_options_match_timm_clip_vit():
    """CLIP's tower options (``norm_pre`` = CLIP's ln_pre, QuickGELU, no patch bias) against
    timm's CLIP-style VisionTransformer: its state dict loads with no renaming, same tokens."""
    from functools import partial
    from timm.layers import QuickGELU
    torch.manual_seed(0)
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, qkv_bias=True,
        pre_norm=True, act_layer=QuickGELU, norm_layer=partial(torch.nn.LayerNorm, eps=1e-5),
        num_classes=0, global_pool='token').eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    assert ref.patch_embed.proj.bias is None  # timm drops it with pre_norm, as CLIP
    model = ViT(arch=TINY, img_size=32, patch_size=8, patch_bias=False, pre_norm=True,
                act_layer='quick_gelu', norm_eps=1e-5, out_type='raw').eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(model(x)[0], ref.forward_features(x)) <= 1e-5
    assert model.get_layer_depth('backbone.norm_pre.weight', prefix='backbone.') == (0, 5)
    frozen = ViT(arch=TINY, img_size=32, patch_size=8, pre_norm=True, frozen_stages=1).train()
    assert not frozen.norm_pre.weight.requires_grad and not frozen.norm_pre.training
    with pytest.raises(ValueError, match='act_layer'):
        ViT(arch=TINY, act_layer='relu')
