import math
from functools import partial

import pytest
import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from mmmim.models import MAE
from mmmim.models.heads import patchify, unpatchify

ARCH = dict(embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0)


def tiny_mae(norm_pix=True, mask_ratio=0.75):
    return MAE(
        backbone=dict(type='MAEViT', arch=ARCH, img_size=32, patch_size=8),
        neck=dict(type='MAEDecoder', img_size=32, patch_size=8, embed_dim=64,
                  decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4),
        head=dict(type='PixelReconstructionHead', patch_size=8, norm_pix=norm_pix),
        mask_ratio=mask_ratio)


class OfficialMAE(nn.Module):
    """The official MAE forward, written out from the paper and the official code's
    structure (timm blocks, the same parameter names), as an independent reference."""

    def __init__(self, img_size=32, p=8, dim=64, depth=2, heads=4, ddim=32, ddepth=2, dheads=4,
                 norm_pix_loss=True):
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.patch_embed = PatchEmbed(img_size, p, 3, dim)
        L = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, L + 1, dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(dim, heads, 4.0, qkv_bias=True, norm_layer=norm)
                                     for _ in range(depth)])
        self.norm = norm(dim)
        self.decoder_embed = nn.Linear(dim, ddim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, ddim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, L + 1, ddim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(ddim, dheads, 4.0, qkv_bias=True, norm_layer=norm)
                                             for _ in range(ddepth)])
        self.decoder_norm = norm(ddim)
        self.decoder_pred = nn.Linear(ddim, p * p * 3)
        self.p = p
        self.norm_pix_loss = norm_pix_loss

    def patchify(self, imgs):
        p = self.p
        h = w = imgs.shape[2] // p
        x = imgs.reshape(imgs.shape[0], 3, h, p, w, p)
        x = torch.einsum('nchpwq->nhwpqc', x)
        return x.reshape(imgs.shape[0], h * w, p**2 * 3)

    def random_masking(self, x, mask_ratio, noise):
        N, L, D = x.shape
        len_keep = int(L * (1 - mask_ratio))
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
        mask = torch.ones([N, L])
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)
        return x_masked, mask, ids_restore

    def forward_encoder(self, x, mask_ratio, noise):
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6)**.5
        loss = ((pred - target)**2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def forward(self, imgs, mask_ratio, noise):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask


def official_state_dict(model):
    """mmmim MAE keys -> official keys (encoder at the top level, decoder beside it)."""
    sd = {}
    for k, v in model.state_dict().items():
        for prefix in ('backbone.', 'neck.'):
            if k.startswith(prefix):
                sd[k[len(prefix):]] = v
    return sd


@pytest.mark.parametrize('norm_pix', [True, False])
def test_loss_equals_official_formulation(norm_pix):
    torch.manual_seed(0)
    model = tiny_mae(norm_pix)
    ref = OfficialMAE(norm_pix_loss=norm_pix)
    ref.load_state_dict(official_state_dict(model), strict=True)
    imgs = torch.randn(3, 3, 32, 32)
    noise = torch.rand(3, 16)
    loss = model.loss(imgs, noise=noise)['loss']
    ref_loss, ref_pred, ref_mask = ref(imgs, 0.75, noise)
    pred, mask = model.forward_train(imgs, noise)
    assert torch.equal(mask, ref_mask)
    assert (pred - ref_pred).abs().max() < 1e-5
    assert abs(loss.item() - ref_loss.item()) < 1e-6
    # and the gradients agree
    loss.backward()
    ref_loss.backward()
    g = model.backbone.blocks[0].attn.qkv.weight.grad
    assert (g - ref.blocks[0].attn.qkv.weight.grad).abs().max() < 1e-5


def test_official_initialisation():
    torch.manual_seed(0)
    model = tiny_mae()
    qkv = model.backbone.blocks[0].attn.qkv.weight  # xavier uniform: U(-a, a)
    a = math.sqrt(6 / (qkv.shape[0] + qkv.shape[1]))
    assert qkv.abs().max() <= a and abs(qkv.std().item() - a / math.sqrt(3)) < 0.1 * a
    proj = model.backbone.patch_embed.proj.weight  # xavier on the [out, in*p*p] view
    a = math.sqrt(6 / (proj.shape[0] + proj[0].numel()))
    assert proj.abs().max() <= a and abs(proj.std().item() - a / math.sqrt(3)) < 0.1 * a
    assert (model.backbone.blocks[0].attn.qkv.bias == 0).all()
    for token in (model.backbone.cls_token, model.neck.mask_token):
        assert 0.005 < token.std().item() < 0.05
    assert not model.backbone.pos_embed.requires_grad
    assert not model.neck.decoder_pos_embed.requires_grad


def test_random_masking_keeps_exact_count_and_restores_order():
    model = tiny_mae()
    x = torch.randn(4, 16, 8)
    vis, mask, ids_restore = model.backbone.random_masking(x, 0.75, None)
    assert vis.shape == (4, 4, 8)
    assert (mask.sum(1) == 12).all()
    ids_shuffle = torch.argsort(ids_restore, dim=1)
    assert torch.equal(vis, torch.gather(x, 1, ids_shuffle[:, :4, None].expand(-1, -1, 8)))
    # visible tokens are exactly the unmasked positions
    for b in range(4):
        kept = set(ids_shuffle[b, :4].tolist())
        assert kept == set((mask[b] == 0).nonzero().flatten().tolist())


def test_loss_only_counts_masked_patches():
    model = tiny_mae()
    imgs = torch.randn(2, 3, 32, 32)
    pred = torch.randn(2, 16, 192)
    mask = (torch.rand(2, 16) < 0.5).float()
    mask[:, 0] = 1
    changed = pred.clone()
    changed[mask == 0] += 10.0  # visible patches: must not matter
    assert torch.equal(model.head.loss(pred, imgs, mask), model.head.loss(changed, imgs, mask))
    changed[mask == 1] += 1.0
    assert model.head.loss(changed, imgs, mask) != model.head.loss(pred, imgs, mask)


def test_patchify_order_and_round_trip():
    imgs = torch.randn(2, 3, 32, 32)
    ref = OfficialMAE().patchify(imgs)
    assert torch.equal(patchify(imgs, 8), ref)
    assert torch.equal(unpatchify(ref, 8, (4, 4)), imgs)


def test_reconstruct_and_modes():
    model = tiny_mae().eval()
    imgs = torch.randn(2, 3, 32, 32)
    recon, mask = model.reconstruct(imgs)
    assert recon.shape == imgs.shape and mask.shape == (2, 1, 32, 32)
    assert mask.mean().item() == pytest.approx(0.75)
    feats = model(imgs, mode='tensor')
    assert feats[0].shape == (2, 17, 64)
    samples = model(imgs, mode='predict')
    assert samples[0].reconstruction.shape == (3, 32, 32)
    with pytest.raises(ValueError, match='mode'):
        model(imgs, mode='train')
    with pytest.raises(ValueError, match='mask_ratio'):
        tiny_mae(mask_ratio=1.0)
