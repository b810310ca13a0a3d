"""VQ-KD: quantizer lookup and EMA update against written-out references, training, loading."""
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from mmmim.models.tokenizers import VQKD, NormEMAVectorQuantizer

TINY = dict(embed_dim=32, depth=1, num_heads=2, mlp_ratio=2.0)


def tiny_vqkd(teacher=True, num_tokens=16, **kwargs):
    return VQKD(
        encoder=dict(type='ViT', arch=TINY, img_size=32, patch_size=8, qv_bias=True, out_type='raw'),
        decoder=dict(type='ViT', arch=TINY, img_size=4, patch_size=1, in_channels=8,
                     qv_bias=True, out_type='raw'),
        num_tokens=num_tokens, codebook_dim=8, teacher_dim=24,
        teacher=dict(type='ViT', arch=dict(embed_dim=24, depth=1, num_heads=2), img_size=32,
                     patch_size=8, out_type='raw') if teacher else None,
        **kwargs)


def test_lookup_is_the_most_similar_unit_code():
    torch.manual_seed(0)
    q = NormEMAVectorQuantizer(num_tokens=32, codebook_dim=8, kmeans_init=False).eval()
    z = torch.randn(2, 10, 8)
    z_q, loss, idx = q(z)
    zn = F.normalize(z, dim=-1)
    expected = (zn @ q.embedding.weight.t()).argmax(-1)  # cosine similarity, brute force
    assert torch.equal(idx, expected)
    torch.testing.assert_close(z_q, q.embedding.weight[expected])
    torch.testing.assert_close(loss, ((q.embedding.weight[expected] - zn)**2).mean())


def test_straight_through_gradient_reaches_the_input():
    q = NormEMAVectorQuantizer(num_tokens=8, codebook_dim=4, kmeans_init=False).eval()
    z = torch.randn(1, 5, 4, requires_grad=True)
    z_q, _, _ = q(z)
    z_q.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert q.embedding.weight.grad is None  # the codebook learns by EMA only


def test_ema_update_follows_the_written_out_rule():
    torch.manual_seed(0)
    q = NormEMAVectorQuantizer(num_tokens=6, codebook_dim=4, decay=0.9, kmeans_init=False).train()
    w0 = q.embedding.weight.clone()
    z = torch.randn(1, 20, 4)
    _, _, idx = q(z)
    zn = F.normalize(z[0], dim=-1)
    for k in range(6):
        members = zn[idx[0] == k]
        if len(members) == 0:
            expected = w0[k]  # an unused code keeps its place
        else:
            mean = F.normalize(members.mean(0), dim=0)
            expected = F.normalize(0.9 * w0[k] + 0.1 * mean, dim=0)
        torch.testing.assert_close(q.embedding.weight[k], expected)
        torch.testing.assert_close(q.cluster_size[k], torch.tensor(0.1 * len(members)))


def test_kmeans_initialises_once_with_unit_codes():
    torch.manual_seed(0)
    q = NormEMAVectorQuantizer(num_tokens=4, codebook_dim=3, kmeans_init=True).train()
    centres = F.normalize(torch.eye(3)[:2], dim=-1)
    z = (centres.repeat(20, 1) + 0.01 * torch.randn(40, 3)).unsqueeze(0)
    q(z)
    assert q.embedding.initted.item() == 1
    norms = q.embedding.weight.norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones(4))
    # both clusters are represented by a code
    assert (q.embedding.weight @ centres.t()).max(0).values.min() > 0.99


def test_training_steps_lower_the_loss_and_report_codebook_usage():
    torch.manual_seed(0)
    model = tiny_vqkd(kmeans_init=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    first = None
    for _ in range(30):
        out = model(x, mode='loss')
        loss = out['loss_rec'] + out['loss_quant']
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.8 * first
    assert 1 <= out['used_codes'].item() <= 16
    assert not any(p.grad is not None for p in model.teacher_model.parameters())


def official_vit(**kwargs):
    """BEiT v2's ``VisionTransformer`` as VQ-KD builds it (q / v biases, absolute positions,
    mean-pooling ``fc_norm`` and no final ``norm``), as timm's Beit, with random weights."""
    vit = timm.models.beit.Beit(embed_dim=32, depth=1, num_heads=2, mlp_ratio=2.0, num_classes=0,
                                use_abs_pos_emb=True, use_rel_pos_bias=False, global_pool='avg',
                                use_fc_norm=True, **kwargs)
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return vit


class OfficialVQKD(nn.Module):
    """The official VQ-KD module tree (beit2 ``modeling_vqkd.py``) and its tokenizer path,
    written out: encoder -> encode_task_layer -> l2-normalised nearest code."""

    def __init__(self, num_tokens=16, dim=8):
        super().__init__()
        self.encoder = official_vit(img_size=32, patch_size=8)
        self.decoder = official_vit(img_size=4, patch_size=1, in_chans=dim)
        self.quantize = nn.Module()
        self.quantize.embedding = nn.Module()
        codes = F.normalize(torch.randn(num_tokens, dim), dim=-1)
        self.quantize.embedding.weight = nn.Parameter(codes, requires_grad=False)
        self.quantize.embedding.cluster_size = nn.Parameter(torch.rand(num_tokens), requires_grad=False)
        self.quantize.embedding.embed_avg = nn.Parameter(codes.clone(), requires_grad=False)
        self.quantize.embedding.register_buffer('initted', torch.tensor([1.0]))
        self.quantize.register_buffer('cluster_size', torch.rand(num_tokens))
        self.encode_task_layer = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, dim))
        self.decode_task_layer = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 24))

    def get_codebook_indices(self, x):
        feats = self.encoder.fc_norm(self.encoder.forward_features(x)[:, 1:])  # patch tokens
        z = F.normalize(self.encode_task_layer(feats), dim=-1)  # [B, L, D]
        w = self.quantize.embedding.weight
        d = z.pow(2).sum(-1, keepdim=True) + w.pow(2).sum(1) - 2 * z @ w.t()
        return d.argmin(-1)

    def decode(self, z_q):
        grid = z_q.transpose(1, 2).reshape(z_q.shape[0], -1, 4, 4)
        return self.decode_task_layer(self.decoder.fc_norm(self.decoder.forward_features(grid)[:, 1:]))


def test_official_layout_loads_as_a_tokenizer_without_teacher(tmp_path):
    torch.manual_seed(0)
    official = OfficialVQKD().eval()
    sd = dict(official.state_dict())
    sd.update({'teacher_model.blocks.0.norm1.weight': torch.ones(24)})  # dropped: no teacher built
    torch.save({'model': sd}, tmp_path / 'vqkd.pth')
    tok = tiny_vqkd(teacher=False, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'vqkd.pth')))
    tok.init_weights()
    tok.eval()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ids = tok.get_codebook_indices(x)
        assert torch.equal(ids, official.get_codebook_indices(x))
        assert len(ids.unique()) > 3  # the tokens are not trivially constant
        z_q = F.embedding(ids, official.quantize.embedding.weight)
        assert (tok.decode(z_q) - official.decode(z_q)).abs().max() <= 1e-5
    assert ids.shape == (4, 16)


def test_teacher_sees_its_own_normalisation():
    model = tiny_vqkd(teacher_mean=(123.675, 116.28, 103.53), teacher_std=(58.395, 57.12, 57.375))
    pixels = torch.randint(0, 256, (1, 3, 4, 4)).float()
    expected = (pixels - torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)) / \
        torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    torch.testing.assert_close(model.scaling_layer(pixels / 127.5 - 1), expected)


def test_files_with_and_without_the_scaling_layer_both_load(tmp_path):
    trained = tiny_vqkd(teacher=False, kmeans_init=False)
    sd = dict(trained.state_dict())
    torch.save({'model': sd}, tmp_path / 'plain.pth')
    sd['scaling_layer.shift'] = torch.zeros(1, 3, 1, 1)
    sd['scaling_layer.scale'] = torch.ones(1, 3, 1, 1)
    torch.save({'model': sd}, tmp_path / 'with_scaling.pth')
    for name in ('plain.pth', 'with_scaling.pth'):
        tok = tiny_vqkd(teacher=False, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / name)))
        tok.init_weights()
        assert torch.equal(tok.quantize.embedding.weight, trained.quantize.embedding.weight)
    sd['encoder.extra'] = torch.zeros(1)
    torch.save({'model': sd}, tmp_path / 'bad.pth')
    tok = tiny_vqkd(teacher=False, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'bad.pth')))
    with pytest.raises(KeyError, match='encoder.extra'):
        tok.init_weights()


def test_official_init_rescales_block_outputs():
    """fix_init_weight: block i's attn.proj and mlp.fc2 start at std 0.02 / sqrt(2 (i + 1))."""
    torch.manual_seed(0)
    wide = dict(embed_dim=256, depth=3, num_heads=4, mlp_ratio=2.0)
    model = VQKD(
        encoder=dict(type='ViT', arch=wide, img_size=32, patch_size=8, qv_bias=True, out_type='raw'),
        decoder=dict(type='ViT', arch=wide, img_size=4, patch_size=1, in_channels=8, qv_bias=True,
                     out_type='raw'),
        num_tokens=16, codebook_dim=8, teacher_dim=24)
    for vit in (model.encoder, model.decoder):
        for i, blk in enumerate(vit.blocks):
            expected = 0.02 / (2 * (i + 1))**0.5
            for w in (blk.attn.proj.weight, blk.mlp.fc2.weight):
                assert abs(w.std().item() / expected - 1) < 0.05, (i, w.std().item())
            assert abs(blk.attn.qkv.weight.std().item() / 0.02 - 1) < 0.05
