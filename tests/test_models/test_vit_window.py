"""Windowed attention in the ViT (ViTDet): partition, padding, global blocks, loading."""
import pytest
import timm
import torch
import torch.nn.functional as F

from mmmim.checkpoint import load_pretrained
from mmmim.models import ViT
from mmmim.models.layers import (Block, relative_position_index, resize_pos_embed,
                                 resize_rel_pos_table, window_partition, window_unpartition)
from mmmim.models.layers.rel_pos_bias import gather_bias

TINY = dict(embed_dim=32, depth=4, num_heads=2, mlp_ratio=2.0)


def jitter(module):
    """Make every parameter (zero-initialised tables and biases included) non-trivial."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return module


def windowed_vit(**kwargs):
    torch.manual_seed(0)
    cfg = dict(arch=TINY, img_size=64, patch_size=8, with_cls_token=False, pos_embed='learned',
               rel_pos_bias='per_layer', out_type='featmap', final_norm=False)
    cfg.update(kwargs)
    return jitter(ViT(**cfg)).eval()


def test_partition_is_a_reshuffle_with_zero_padding():
    x = torch.randn(2, 5 * 7, 3)
    windows, padded = window_partition(x, (5, 7), 3)
    assert padded == (6, 9) and windows.shape == (2 * 2 * 3, 9, 3)
    grid = F.pad(x.view(2, 5, 7, 3), (0, 0, 0, 2, 0, 1))  # [2, 6, 9, 3]
    # window (r, c) of image b is windows[b * 6 + r * 3 + c], rows first
    for b in range(2):
        for r in range(2):
            for c in range(3):
                ref = grid[b, 3 * r:3 * r + 3, 3 * c:3 * c + 3].reshape(9, 3)
                assert torch.equal(windows[b * 6 + r * 3 + c], ref)
    assert torch.equal(window_unpartition(windows, (5, 7), padded, 3), x)


@pytest.mark.parametrize('beit', [False, True])
def test_windows_covering_the_image_equal_global_attention(beit):
    options = dict(qv_bias=True, layer_scale_init_value=0.1, pos_embed=None) if beit else {}
    windowed = windowed_vit(window_size=8, window_block_indexes=[0, 2], **options)  # 8x8 grid
    plain = windowed_vit(**options)
    plain.load_state_dict(windowed.state_dict(), strict=True)  # same names, same shapes
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (windowed(x)[0] - plain(x)[0]).abs().max() <= 1e-6


def test_all_windowed_blocks_see_only_their_window():
    model = windowed_vit(window_size=4, window_block_indexes=[0, 1, 2, 3])
    x = torch.randn(1, 3, 64, 64)
    y = x.clone()
    y[..., :8, :8] += 1.0  # patch (0, 0): window (0, 0) covers patches 0..3 x 0..3
    with torch.no_grad():
        d = (model(x)[0] - model(y)[0]).abs().amax(dim=1)[0]  # [8, 8]
    assert d[:4, :4].max() > 1e-3
    d[:4, :4] = 0
    assert d.max() == 0


def reference_windowed_block(block, x, grid, ws):
    """The block written out: zero-pad the normalised grid, attend in each window
    with the window's bias (class-token row and column dropped), crop, MLP."""
    B, N, C = x.shape
    h, w = grid
    heads = block.attn.num_heads
    y = block.norm1(x).view(B, h, w, C)
    Hp, Wp = -(-h // ws) * ws, -(-w // ws) * ws
    y = F.pad(y, (0, 0, 0, Wp - w, 0, Hp - h))
    out = torch.zeros_like(y)
    attn = block.attn
    qkv_bias = torch.cat([attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias])
    bias = gather_bias(attn.relative_position_bias_table,
                       relative_position_index((ws, ws)))[:, 1:, 1:]  # [heads, ws*ws, ws*ws]
    for r in range(0, Hp, ws):
        for c in range(0, Wp, ws):
            t = y[:, r:r + ws, c:c + ws].reshape(B, ws * ws, C)
            q, k, v = F.linear(t, attn.qkv.weight, qkv_bias).chunk(3, dim=-1)
            q, k, v = (z.view(B, -1, heads, C // heads).transpose(1, 2) for z in (q, k, v))
            a = (q @ k.transpose(-2, -1)) * (C // heads)**-0.5 + bias
            o = (a.softmax(-1) @ v).transpose(1, 2).reshape(B, ws * ws, C)
            out[:, r:r + ws, c:c + ws] = attn.proj(o).view(B, ws, ws, C)
    x = x + block.gamma_1 * out[:, :h, :w].reshape(B, N, C)
    return x + block.gamma_2 * block.mlp(block.norm2(x))


@pytest.mark.parametrize('grid', [(6, 10), (4, 4), (3, 9)])
def test_padded_windows_match_a_straightforward_reference(grid):
    torch.manual_seed(0)
    block = jitter(Block(32, 2, 2.0, qv_bias=True, window=(4, 4), layer_scale_init_value=0.1,
                         window_size=4)).eval()
    x = torch.randn(2, grid[0] * grid[1], 32)
    with torch.no_grad():
        assert (block(x, None, grid) - reference_windowed_block(block, x, grid, 4)).abs().max() < 1e-5


def test_vit_at_sizes_that_are_not_multiples_of_the_window():
    model = windowed_vit(window_size=3, window_block_indexes=[0, 2]).train()
    x = torch.randn(2, 3, 48, 80, requires_grad=True)  # 6x10 patches, windows of 3: 6x12 padded
    out = model(x)[0]
    assert out.shape == (2, 32, 6, 10)
    out.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert model.blocks[0].attn.relative_position_bias_table.grad.abs().sum() > 0


def test_official_beit_and_mae_files_load_into_the_windowed_vit(tmp_path):
    torch.manual_seed(0)
    beit = jitter(timm.models.beit.Beit(
        img_size=32, patch_size=8, embed_dim=32, depth=4, num_heads=2, mlp_ratio=2.0,
        num_classes=0, global_pool='', use_fc_norm=False, init_values=0.1, use_abs_pos_emb=False,
        use_rel_pos_bias=False, use_shared_rel_pos_bias=True))  # one table for a 4x4 grid
    path = str(tmp_path / 'beit.pth')
    torch.save({'model': beit.state_dict()}, path)
    model = ViT(arch=TINY, img_size=64, patch_size=8, with_cls_token=False, pos_embed=None,
                qv_bias=True, rel_pos_bias='per_layer', layer_scale_init_value=0.1,
                window_size=4, window_block_indexes=[0, 1, 3], out_type='featmap')
    report = load_pretrained(model, path)
    shared = beit.rel_pos_bias.relative_position_bias_table.detach()
    for i in (0, 1, 3):  # windowed: the file's 4x4 table as it is
        assert torch.equal(model.blocks[i].attn.relative_position_bias_table.detach(), shared)
    global_table = model.blocks[2].attn.relative_position_bias_table.detach()  # resized to 8x8
    assert global_table.shape == (15 * 15 + 3, 2)
    assert torch.allclose(global_table, resize_rel_pos_table(shared, (8, 8)))
    assert 'cls_token' in report['unexpected'] and not report['missing']
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 72, 40))[0].shape == (1, 32, 9, 5)

    mae = jitter(timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=4, num_heads=2, mlp_ratio=2.0,
        num_classes=0))
    path = str(tmp_path / 'mae.pth')
    torch.save({'model': mae.state_dict()}, path)
    model = windowed_vit(window_size=4, window_block_indexes=[0, 1, 3])
    report = load_pretrained(model, path)
    expected = resize_pos_embed(mae.pos_embed.detach()[:, 1:], (4, 4), (8, 8), num_extra_tokens=0)
    assert torch.equal(model.pos_embed.detach(), expected)  # class-token entry dropped, resized
    assert 'cls_token' in report['unexpected']
    assert report['missing'] == [f'blocks.{i}.attn.relative_position_bias_table' for i in range(4)]


def test_bad_window_options_are_named():
    with pytest.raises(ValueError, match='class token'):
        ViT(arch=TINY, img_size=64, patch_size=8, out_type='featmap', window_size=4,
            window_block_indexes=[0])
    with pytest.raises(ValueError, match='per_layer'):
        ViT(arch=TINY, img_size=64, patch_size=8, out_type='featmap', with_cls_token=False,
            rel_pos_bias='shared', window_size=4, window_block_indexes=[0])
    with pytest.raises(ValueError, match='window_size'):
        ViT(arch=TINY, img_size=64, patch_size=8, out_type='featmap', with_cls_token=False,
            window_block_indexes=[0])
