"""CAE: the loss against a written-out version of the official forward."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement

from mmmim.models import CAE

TINY = dict(embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0)


def tiny_cae():
    return CAE(
        backbone=dict(type='CAEViT', arch=TINY, img_size=32, patch_size=8),
        neck=dict(type='CAENeck', embed_dim=64, num_heads=4, regressor_depth=2, decoder_depth=2),
        head=dict(type='TokenPredictionHead', embed_dim=64, vocab_size=32),
        tokenizer=dict(type='DALLEEncoder', n_hid=8, vocab_size=32))


def block_mask(B=2, L=16, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(B, L, dtype=torch.bool)
    for b in range(B):
        mask[b, torch.randperm(L, generator=g)[:n]] = True
    return mask


def attention(q, k, v, heads):
    """Plain multi-head attention, ``[B, N, C]`` each."""
    B, Nq, C = q.shape
    split = lambda x: x.view(B, -1, heads, C // heads).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    w = (q @ k.transpose(-2, -1) / (C // heads)**0.5).softmax(-1)
    return (w @ v).transpose(1, 2).reshape(B, Nq, C)


def reference_loss(model, imgs, view, mask):
    """The official forward, written out from the paper and the official code's structure."""
    bb, neck = model.backbone, model.neck
    B, L = mask.shape
    labels = model.tokenizer(view).argmax(1).flatten(1)[mask]

    def encode(keep):
        x = bb.patch_embed(imgs)[0] + bb.pos_embed[:, 1:]
        cls = (bb.cls_token + bb.pos_embed[:, :1]).expand(B, -1, -1)
        x = torch.cat([cls, x[keep].view(B, -1, 64)], dim=1)
        for blk in bb.blocks:
            x = blk(x)
        return bb.norm(x)[:, 1:]

    visible = encode(~mask)
    target = encode(mask)
    pos = bb.pos_embed[:, 1:].expand(B, -1, -1)
    pos_v, pos_m = pos[~mask].view(B, -1, 64), pos[mask].view(B, -1, 64)
    x = neck.mask_token.expand(B, pos_m.shape[1], 64)
    for blk in neck.regressor_blocks:
        a = blk.cross_attn
        kv = torch.cat([visible, x], dim=1)
        q = F.linear(blk.norm1_q(x + pos_m), a.q.weight, a.q_bias)
        k = F.linear(blk.norm1_k(kv + torch.cat([pos_v, pos_m], 1)), a.k.weight)
        v = F.linear(blk.norm1_v(kv), a.v.weight, a.v_bias)
        x = x + blk.gamma_1_cross * a.proj(attention(q, k, v, 4))
        x = blk.norm2_cross(x)
        x = x + blk.gamma_2_cross * blk.mlp_cross(x)
    pred = neck.regressor_norm(x)
    x = pred + pos_m
    for blk in neck.decoder_blocks:
        x = blk(x)
    logits = model.head(neck.decoder_norm(x)).flatten(0, 1)
    return F.cross_entropy(logits, labels), 2 * F.mse_loss(pred, target)


def test_loss_equals_the_written_out_official_forward():
    torch.manual_seed(0)
    model = tiny_cae().eval()  # no stochastic depth here, so both passes are deterministic
    with torch.no_grad():
        for p in model.neck.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    imgs, view = torch.randn(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = block_mask()
    out = model.loss([imgs, view], [BaseDataElement(mask=m.view(4, 4)) for m in mask])
    with torch.no_grad():
        mim, align = reference_loss(model, imgs, view, mask)
    assert abs(out['loss_mim'].item() - mim.item()) < 1e-5
    assert abs(out['loss_align'].item() - align.item()) < 1e-5


def test_target_branch_sends_no_gradient_to_the_encoder():
    torch.manual_seed(0)
    model = tiny_cae()
    imgs, view = torch.randn(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = block_mask()
    samples = [BaseDataElement(mask=m.view(4, 4)) for m in mask]
    model.loss([imgs, view], samples)['loss_align'].backward()
    with_target = [p.grad.clone() for p in model.backbone.blocks.parameters()]
    model.zero_grad()
    # the same loss with the target latents as constants: identical encoder gradients
    n = 1
    target = model.backbone.forward_subset(imgs, mask)[:, n:].detach()
    visible = model.backbone.forward_subset(imgs, ~mask)[:, n:]
    pos = model.backbone.pos_embed[:, n:].expand(2, -1, -1)
    pred, _ = model.neck(visible, pos[~mask].view(2, -1, 64), pos[mask].view(2, -1, 64))
    (2 * F.mse_loss(pred, target)).backward()
    for a, p in zip(with_target, model.backbone.blocks.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_unequal_mask_counts_are_refused():
    model = tiny_cae()
    mask = block_mask()
    mask[0, ~mask[0]] = torch.tensor([True] + [False] * 9)
    samples = [BaseDataElement(mask=m.view(4, 4)) for m in mask]
    with pytest.raises(ValueError, match='same number of masked patches'):
        model.loss([torch.randn(2, 3, 32, 32), torch.rand(2, 3, 32, 32)], samples)


def test_official_initialisation_truncates_at_one_std():
    """CAE's trunc_normal_ cuts at +-std: patch projection, class token, mask token; zero bias."""
    torch.manual_seed(0)
    model = CAE(
        backbone=dict(type='CAEViT', arch=dict(TINY, embed_dim=256), img_size=32, patch_size=8),
        neck=dict(type='CAENeck', embed_dim=256, num_heads=4, regressor_depth=1, decoder_depth=1),
        head=dict(type='TokenPredictionHead', embed_dim=256, vocab_size=32),
        tokenizer=dict(type='DALLEEncoder', n_hid=8, vocab_size=32))
    proj = model.backbone.patch_embed.proj
    for t in (proj.weight, model.backbone.cls_token, model.neck.mask_token):
        assert t.abs().max() <= 0.02
    # normal(0.02) truncated at one std has std 0.02 * 0.538
    assert abs(proj.weight.std().item() / 0.02 - 0.538) < 0.02
    assert torch.equal(proj.bias, torch.zeros_like(proj.bias))
    qkv = model.backbone.blocks[0].attn.qkv.weight  # xavier-uniform: bound sqrt(6 / (fan_in + fan_out))
    assert qkv.abs().max() <= (6 / (256 + 768))**0.5 and qkv.abs().max() > 0.9 * (6 / 1024)**0.5
