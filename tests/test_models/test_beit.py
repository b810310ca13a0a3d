"""BEiT v1: the mask-token encoder against timm's BEiT, and the loss on masked positions only."""
import pytest
import timm
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement

from mmmim.models import BEiT, BEiTv2, BEiTViT

TINY = dict(embed_dim=64, depth=3, num_heads=4, mlp_ratio=4.0)


def tiny_beit(vocab=32):
    return BEiT(
        backbone=dict(type='BEiTViT', arch=TINY, img_size=32, patch_size=8),
        head=dict(type='TokenPredictionHead', embed_dim=64, vocab_size=vocab),
        tokenizer=dict(type='DALLEEncoder', n_hid=8, vocab_size=vocab))


def random_mask(B=2, L=16, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(B, L, dtype=torch.bool)
    for b in range(B):
        mask[b, torch.randperm(L, generator=g)[:n]] = True
    return mask


def test_mask_token_encoder_matches_timm_beit_with_the_same_replacement():
    torch.manual_seed(0)
    model = BEiTViT(arch=TINY, img_size=32, patch_size=8).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ref = timm.models.beit.Beit(
        img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=0,
        global_pool='', use_fc_norm=False, init_values=0.1, use_abs_pos_emb=False,
        use_shared_rel_pos_bias=True).eval()
    sd = {k: v for k, v in model.state_dict().items() if k != 'mask_token'}
    missing, unexpected = ref.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith('relative_position_index') for k in missing)
    x = torch.randn(2, 3, 32, 32)
    mask = random_mask()
    with torch.no_grad():
        out = model.forward_masked(x, mask)[-1]
        # the official forward: patch embedding, masked ones replaced, class token, blocks
        t = ref.patch_embed(x)
        w = mask.unsqueeze(-1).float()
        t = t * (1 - w) + model.mask_token * w
        t = torch.cat([ref.cls_token.expand(2, -1, -1), t], dim=1)
        rel = ref.rel_pos_bias()
        for blk in ref.blocks:
            t = blk(t, shared_rel_pos_bias=rel)
        expected = ref.norm(t)
    assert (out - expected).abs().max() <= 1e-5
    assert out.shape == (2, 17, 64)


def test_official_init_rescales_output_projections():
    torch.manual_seed(0)
    model = BEiTViT(arch=dict(embed_dim=256, depth=4, num_heads=4), img_size=32, patch_size=8)
    for i, blk in enumerate(model.blocks):
        expected = 0.02 * 0.5379 / (2 * (i + 1))**0.5  # std of a normal cut at one std
        assert abs(blk.attn.proj.weight.std().item() - expected) < 0.1 * expected


def test_loss_is_cross_entropy_on_masked_positions_only(monkeypatch):
    torch.manual_seed(0)
    model = tiny_beit()
    imgs = torch.randn(2, 3, 32, 32)
    mask = random_mask()
    samples = [BaseDataElement(mask=m.view(4, 4)) for m in mask]
    tokens = torch.randint(0, 32, (2, 16))
    monkeypatch.setattr(model, 'targets', lambda inputs: tokens)
    loss = model.loss([imgs, imgs[:, :, :32, :32]], samples)['loss']
    with torch.no_grad():
        feats = model.backbone.forward_masked(imgs, mask)[-1][:, 1:]
        expected = F.cross_entropy(model.head(feats[mask]), tokens[mask])
    torch.testing.assert_close(loss, expected)
    changed = tokens.clone()
    changed[~mask] = (changed[~mask] + 1) % 32  # targets of visible patches do not count
    monkeypatch.setattr(model, 'targets', lambda inputs: changed)
    torch.testing.assert_close(model.loss([imgs, imgs], samples)['loss'], loss)


def test_targets_come_from_the_tokenizer_view():
    model = tiny_beit()
    view = torch.rand(2, 3, 32, 32)
    assert torch.equal(model.targets([None, view]), model.tokenizer(view).argmax(1).flatten(1))
    assert model.targets([None, view]).shape == (2, 16)


def tiny_beitv2(vocab=32):
    return BEiTv2(
        backbone=dict(type='BEiTViT', arch=TINY, img_size=32, patch_size=8, out_indices=[1, 2]),
        neck=dict(type='BEiTV2Neck', num_layers=2, early_layers=2, embed_dim=64, num_heads=4,
                  depth=3),
        head=dict(type='TokenPredictionHead', embed_dim=64, vocab_size=vocab),
        tokenizer=dict(
            type='VQKD', num_tokens=vocab, codebook_dim=8, kmeans_init=False,
            encoder=dict(type='ViT', arch=TINY, img_size=32, patch_size=8, qv_bias=True,
                         out_type='raw'),
            decoder=dict(type='ViT', arch=TINY, img_size=4, patch_size=1, in_channels=8,
                         qv_bias=True, out_type='raw')))


def timm_beit(depth):
    return timm.models.beit.Beit(img_size=32, patch_size=8, embed_dim=64, depth=depth, num_heads=4,
                                 num_classes=0, global_pool='', use_fc_norm=False, init_values=0.1,
                                 use_abs_pos_emb=False, use_shared_rel_pos_bias=True).eval()


def test_beitv2_loss_equals_the_written_out_official_forward():
    """The official VisionTransformerForMaskedImageModelingCLS forward, written out on timm's
    BEiT blocks loaded with the same weights: MIM and CLS-MIM losses on masked positions."""
    torch.manual_seed(0)
    model = tiny_beitv2()
    imgs = torch.randn(2, 3, 32, 32)
    mask = random_mask()
    samples = [BaseDataElement(mask=m.view(4, 4)) for m in mask]
    view = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        model.backbone.rel_pos_bias.relative_position_bias_table.normal_(0, 0.5)
        labels = model.tokenizer.get_codebook_indices(view)[mask]
    out = model.loss([imgs, view], samples)
    bb, neck = timm_beit(3), timm_beit(2)
    own = model.backbone.state_dict()
    bb.load_state_dict({k: v for k, v in own.items() if k != 'mask_token'})
    neck.load_state_dict({'blocks.' + k[len('cls_pt_layers.'):]: v
                          for k, v in model.neck.state_dict().items()}, strict=False)
    with torch.no_grad():
        w = mask.unsqueeze(-1).float()
        x = bb.patch_embed(imgs) * (1 - w) + own['mask_token'] * w
        x = torch.cat([bb.cls_token.expand(2, -1, -1), x], dim=1)
        rel = bb.rel_pos_bias()
        for i, blk in enumerate(bb.blocks):
            x = blk(x, shared_rel_pos_bias=rel)
            if i + 1 == 2:  # early_layers
                early = x[:, 1:]
        cls_pt = torch.cat([x[:, :1], early], dim=1)
        for blk in neck.blocks:
            cls_pt = blk(cls_pt, shared_rel_pos_bias=rel)
        loss_1 = F.cross_entropy(model.head(bb.norm(x)[:, 1:][mask]), labels)
        loss_2 = F.cross_entropy(model.head(bb.norm(cls_pt)[:, 1:][mask]), labels)
        assert torch.equal(model.tokenizer.get_codebook_indices(view)[mask], labels)
    torch.testing.assert_close(out['loss_mim'], loss_1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out['loss_cls_pt'], loss_2, rtol=1e-5, atol=1e-5)


def test_beitv2_checks_the_early_layer():
    with pytest.raises(ValueError, match='out_indices'):
        BEiTv2(backbone=dict(type='BEiTViT', arch=TINY, img_size=32, patch_size=8),
               neck=dict(type='BEiTV2Neck', early_layers=2, embed_dim=64, num_heads=4, depth=3),
               head=dict(type='TokenPredictionHead', embed_dim=64, vocab_size=32),
               tokenizer=dict(type='DALLEEncoder', n_hid=8, vocab_size=32))


def test_a_tokenizer_view_of_the_wrong_size_is_named():
    model = tiny_beit()
    mask = random_mask()
    samples = [BaseDataElement(mask=m.view(4, 4)) for m in mask]
    with pytest.raises(ValueError, match='second_scale'):
        model.loss([torch.randn(2, 3, 32, 32), torch.rand(2, 3, 64, 64)], samples)
