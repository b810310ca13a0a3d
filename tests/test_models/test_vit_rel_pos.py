"""Relative positions in the ViT: ViTDet's decomposed ones (``use_rel_pos``) and table init."""
import math

import pytest
import timm
import torch
import torch.nn.functional as F

from mmmim.checkpoint import load_pretrained
from mmmim.models import BEiTViT, ViT
from mmmim.models.layers import Attention, decomposed_rel_pos_bias, resize_rel_pos

TINY = dict(embed_dim=32, depth=4, num_heads=2, mlp_ratio=2.0)


def jitter(module, scale=0.05):
    """Make every parameter (zero-initialised tables included) non-trivial."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)
    return module


# --------------------------------------------------------------------------- reference
# detectron2's get_rel_pos / add_decomposed_rel_pos (MViTv2, ViTDet), written
# out element by element for self-attention (query grid = key grid).
def reference_linear_resize(table, length):
    """``F.interpolate(mode='linear', align_corners=False)`` along the rows, by hand."""
    L = table.shape[0]
    rows = []
    for i in range(length):
        x = max((i + 0.5) * L / length - 0.5, 0.0)
        x0 = min(int(math.floor(x)), L - 1)
        x1 = min(x0 + 1, L - 1)
        lam = x - x0
        rows.append((1 - lam) * table[x0] + lam * table[x1])
    return torch.stack(rows)


def reference_get_rel_pos(size, rel_pos):
    """``[size, size, d]``: the embedding of offset ``i - k`` for query ``i``, key ``k``."""
    if rel_pos.shape[0] != 2 * size - 1:
        rel_pos = reference_linear_resize(rel_pos, 2 * size - 1)
    out = rel_pos.new_empty(size, size, rel_pos.shape[1])
    for i in range(size):
        for k in range(size):
            out[i, k] = rel_pos[i - k + size - 1]
    return out


def reference_add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, grid):
    """``attn`` ``[B, h*w, h*w]`` plus ``q(i,j) . R_h[i,k] + q(i,j) . R_w[j,l]`` at ``[(i,j), (k,l)]``."""
    h, w = grid
    R_h = reference_get_rel_pos(h, rel_pos_h)
    R_w = reference_get_rel_pos(w, rel_pos_w)
    attn = attn.clone()
    for i in range(h):
        for j in range(w):
            for k in range(h):
                for l in range(w):
                    qi = q[:, i * w + j]  # [B, d]
                    attn[:, i * w + j, k * w + l] += qi @ R_h[i, k] + qi @ R_w[j, l]
    return attn


def reference_attention(attn_module, x, grid):
    """detectron2's ``Attention.forward``: logits, decomposed rel pos from unscaled q, softmax."""
    B, N, C = x.shape
    heads = attn_module.num_heads
    d = C // heads
    qkv = attn_module.qkv(x).reshape(B, N, 3, heads, d).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, B * heads, N, d).unbind(0)
    attn = (q * d**-0.5) @ k.transpose(-2, -1)
    attn = reference_add_decomposed_rel_pos(attn, q, attn_module.rel_pos_h, attn_module.rel_pos_w,
                                            grid)
    out = (attn.softmax(-1) @ v).view(B, heads, N, d).transpose(1, 2).reshape(B, N, C)
    return attn_module.proj(out)


def reference_block(block, x, grid):
    """detectron2's ``Block.forward`` (window partition with zero padding, then the MLP)."""
    B, N, C = x.shape
    h, w = grid
    ws = block.window_size
    y = block.norm1(x)
    if ws:
        y = y.view(B, h, w, C)
        Hp, Wp = -(-h // ws) * ws, -(-w // ws) * ws
        y = F.pad(y, (0, 0, 0, Wp - w, 0, Hp - h))
        out = torch.zeros_like(y)
        for r in range(0, Hp, ws):
            for c in range(0, Wp, ws):
                t = y[:, r:r + ws, c:c + ws].reshape(B, ws * ws, C)
                out[:, r:r + ws, c:c + ws] = reference_attention(block.attn, t, (ws, ws)).view(
                    B, ws, ws, C)
        y = out[:, :h, :w].reshape(B, N, C)
    else:
        y = reference_attention(block.attn, y, grid)
    x = x + y
    return x + block.mlp(block.norm2(x))


def vitdet(**kwargs):
    torch.manual_seed(0)
    cfg = dict(arch=TINY, img_size=64, patch_size=8, with_cls_token=False, pos_embed='learned',
               use_rel_pos=True, window_size=3, window_block_indexes=[0, 2], out_type='featmap',
               final_norm=False)
    cfg.update(kwargs)
    return ViT(**cfg)


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize('grid,tables', [((3, 5), (3, 5)), ((4, 4), (4, 4)), ((5, 3), (2, 6))])
def test_decomposed_bias_matches_written_out_add_decomposed_rel_pos(grid, tables):
    torch.manual_seed(0)
    B, heads, d = 2, 3, 4
    N = grid[0] * grid[1]
    q = torch.randn(B, heads, N, d, dtype=torch.float64)
    rel_pos_h = torch.randn(2 * tables[0] - 1, d, dtype=torch.float64)  # other lengths: resized
    rel_pos_w = torch.randn(2 * tables[1] - 1, d, dtype=torch.float64)
    ours = decomposed_rel_pos_bias(q, rel_pos_h, rel_pos_w, grid)  # [B, heads, N, N]
    ref = reference_add_decomposed_rel_pos(torch.zeros(B * heads, N, N, dtype=torch.float64),
                                           q.reshape(B * heads, N, d),
                                           rel_pos_h, rel_pos_w, grid)
    assert (ours - ref.view(B, heads, N, N)).abs().max() < 1e-5


def test_linear_resize_of_a_table_matches_the_written_out_interpolation():
    torch.manual_seed(0)
    table = torch.randn(7, 5)
    for length in (15, 3, 7):
        ref = reference_linear_resize(table, length)
        assert (resize_rel_pos(table, length) - ref).abs().max() < 1e-5
    assert resize_rel_pos(table, 7) is table


def test_attention_passes_the_bias_to_sdpa_and_matches_detectron2(monkeypatch):
    torch.manual_seed(0)
    attn = jitter(Attention(32, 2, rel_pos_size=(4, 6)), 0.3).eval()
    assert attn.rel_pos_h.shape == (7, 16) and attn.rel_pos_w.shape == (11, 16)
    masks = []
    sdpa = F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, attn_mask=None, **kwargs):
        masks.append(attn_mask)
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)
    monkeypatch.setattr(F, 'scaled_dot_product_attention', recording_sdpa)
    for grid in [(4, 6), (5, 3)]:  # the built grid, and another (tables resized on the fly)
        x = torch.randn(2, grid[0] * grid[1], 32)
        with torch.no_grad():
            assert (attn(x, None, grid) - reference_attention(attn, x, grid)).abs().max() < 1e-5
        n = grid[0] * grid[1]
        assert masks[-1].shape == (2, 2, n, n) and masks[-1].abs().max() > 0


def test_windowed_vit_with_decomposed_rel_pos_matches_detectron2_blocks():
    model = jitter(vitdet()).eval()  # 8x8 grid; windows of 3 (padded to 9x9) in blocks 0 and 2
    for i, blk in enumerate(model.blocks):
        side = 3 if i in (0, 2) else 8
        assert blk.attn.rel_pos_h.shape == blk.attn.rel_pos_w.shape == (2 * side - 1, 16)
        assert blk.attn.relative_position_bias_table is None
    img = torch.randn(2, 3, 64, 48)  # an 8x6 grid: the global tables are resized on the fly
    with torch.no_grad():
        x, grid = model.embed_patches(img)
        for blk in model.blocks:
            x = reference_block(blk, x, grid)
        ref = x.transpose(1, 2).reshape(2, 32, *grid)
        assert (model(img)[0] - ref).abs().max() < 1e-4


def test_decomposed_tables_learn_and_run_under_autocast():
    model = vitdet().train()
    x = torch.randn(2, 3, 64, 64)
    model(x)[0].square().mean().backward()
    for blk in model.blocks:
        assert blk.attn.rel_pos_h.grad.abs().sum() > 0 and blk.attn.rel_pos_w.grad.abs().sum() > 0
    model = jitter(model).eval()
    with torch.no_grad():
        ref = model(x)[0]
        with torch.autocast('cpu', dtype=torch.bfloat16):  # the bias is cast to the queries' dtype
            out = model(x)[0]
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_relative_position_tables_start_at_zero():
    model = vitdet()
    for blk in model.blocks:
        assert not blk.attn.rel_pos_h.any() and not blk.attn.rel_pos_w.any()
    beit_tables = [ViT(arch=TINY, img_size=32, patch_size=8, pos_embed=None, rel_pos_bias='per_layer'),
                   BEiTViT(arch=TINY, img_size=32, patch_size=8)]
    # timm's BEiT (the official init) leaves its tables at zero too
    ref = timm.models.beit.Beit(img_size=32, patch_size=8, embed_dim=32, depth=4, num_heads=2,
                                use_abs_pos_emb=False, use_rel_pos_bias=True)
    tables = [(n, p) for m in beit_tables + [ref] for n, p in m.named_parameters()
              if n.endswith('relative_position_bias_table')]
    assert len(tables) == 4 + 1 + 4
    for name, p in tables:
        assert not p.any(), name


def test_mae_file_loads_with_new_tables_and_vitdet_file_loads_resized(tmp_path):
    torch.manual_seed(0)
    mae = jitter(timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=4, num_heads=2, mlp_ratio=2.0,
        num_classes=0))  # the official MAE encoder layout: no rel_pos_h / rel_pos_w
    path = str(tmp_path / 'mae.pth')
    torch.save({'model': mae.state_dict()}, path)
    model = vitdet()
    report = load_pretrained(model, path)
    assert report['missing'] == [f'blocks.{i}.attn.rel_pos_{a}' for i in range(4) for a in 'hw']
    assert not any(p.any() for n, p in model.named_parameters() if 'rel_pos' in n)
    assert torch.equal(model.blocks[1].attn.qkv.weight, mae.blocks[1].attn.qkv.weight)

    # a ViTDet file trained at 32x32 (4x4 grid, windows of 2) into 64x64 with windows of 3
    small = jitter(vitdet(img_size=32, window_size=2))
    path = str(tmp_path / 'vitdet.pth')
    torch.save({'state_dict': {'backbone.' + k: v for k, v in small.state_dict().items()}}, path)
    model = vitdet()
    report = load_pretrained(model, path)
    assert not report['missing'] and not report['unexpected']
    for i, side in enumerate([3, 8, 3, 8]):
        for axis in 'hw':
            src = getattr(small.blocks[i].attn, f'rel_pos_{axis}').detach()
            dst = getattr(model.blocks[i].attn, f'rel_pos_{axis}').detach()
            assert dst.shape == (2 * side - 1, 16)
            assert (dst - reference_linear_resize(src, 2 * side - 1)).abs().max() < 1e-5
    assert sum(f'resized blocks.{i}.attn.rel_pos_' in n for n in report['notes'] for i in range(4)) == 8

    wide = vitdet(arch=dict(TINY, num_heads=4))  # 8-wide heads: no resize can fit
    with pytest.raises(ValueError, match='rel_pos_h.*head widths'):
        load_pretrained(wide, path)


def test_bad_rel_pos_options_are_named():
    with pytest.raises(ValueError, match='choose one'):
        vitdet(rel_pos_bias='per_layer')
    with pytest.raises(ValueError, match='with_cls_token=False'):
        ViT(arch=TINY, img_size=32, patch_size=8, use_rel_pos=True)


def test_layer_depth_of_decomposed_tables():
    model = vitdet()
    assert model.get_layer_depth('backbone.blocks.2.attn.rel_pos_h', 'backbone.') == (3, 6)
    assert model.get_layer_depth('blocks.0.attn.rel_pos_w') == (1, 6)
