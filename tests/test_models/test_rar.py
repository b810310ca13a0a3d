"""RAR against a written-out copy of the official module structure
(bytedance/1d-tokenizer modeling/rar.py, timm's Mlp): keys, logits, loss, sampling."""
import math

import pytest
import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn

from mmmim.models.generators import RARTransformer
from mmmim.registry import MODELS

K, C, L = 32, 4, 16  # codebook, classes, tokens (4 x 4)
ARCH = dict(embed_dim=64, depth=2, num_heads=4)


# ----------------------------------------------------------------------------------------
# Reference: the official structure, written out.
class _RefAttn(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.qkv = nn.Linear(d, 3 * d, bias=True)
        self.q_norm = nn.LayerNorm(d // h, eps=1e-6)
        self.k_norm = nn.LayerNorm(d // h, eps=1e-6)
        self.proj = nn.Linear(d, d)

    def forward(self, x, mask):
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.h, D // self.h).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        a = (q @ k.transpose(-2, -1)) / math.sqrt(D // self.h) + mask  # explicit softmax attention
        return self.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(B, N, D))


class _RefBlock(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = _RefAttn(d, h)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(in_features=d, hidden_features=4 * d, act_layer=nn.GELU)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x, mask, c):
        s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + g1 * self.attn(self.norm1(x) * (1 + sc1) + s1, mask)
        return x + g2 * self.mlp(self.norm2(x) * (1 + sc2) + s2)


class _RefFinal(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm_final = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, x, c):
        scale, shift = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.norm_final(x) * (1 + scale) + shift


class _RefRAR(nn.Module):
    def __init__(self, d=64, depth=2, h=4):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, d))
        self.blocks = nn.ModuleList(_RefBlock(d, h) for _ in range(depth))
        self.embeddings = nn.Embedding(K + 1 + C + 1, d)
        self.pos_embed = nn.Parameter(torch.randn(1, L + 1024, d) * 0.5)
        self.target_aware_pos_embed = nn.Parameter(torch.randn(1, L + 1024, d) * 0.5)
        self.timesteps_embeddings = nn.Parameter(torch.randn(1, L + 100, d) * 0.5)
        self.adaln_before_head = _RefFinal(d)
        self.lm_head = nn.Linear(d, K)
        with torch.no_grad():  # non-zero modulations so that every path counts
            for p in self.parameters():
                if p.ndim <= 2:
                    p.add_(torch.randn_like(p) * 0.1)

    @staticmethod
    def shuffle(x, orders):
        b = torch.arange(x.shape[0])[:, None].expand(-1, x.shape[1])
        return x[b, orders]

    def forward(self, ids, cond, orders, sampling=False):
        B = ids.shape[0]
        labels = ids.clone()
        inp = torch.cat([cond.view(B, -1), ids.view(B, -1)], dim=1)
        emb = self.embeddings(inp)
        cond_tok = emb[:, 0]
        pos = self.pos_embed.repeat(B, 1, 1)
        pos_post = self.shuffle(pos[:, 2:2 + L], orders)
        ta_post = self.shuffle(self.target_aware_pos_embed.repeat(B, 1, 1)[:, 2:2 + L], orders)
        if not sampling:
            labels = self.shuffle(labels, orders)
            emb = torch.cat([emb[:, :1], self.shuffle(emb[:, 1:], orders)], dim=1)
        x = torch.cat([self.cls_token.expand(B, -1, -1), emb], dim=1)
        x = x + torch.cat([pos[:, :2], pos_post], dim=1)[:, :x.shape[1]]
        ta = torch.cat([torch.zeros_like(x[:, :1]), ta_post, torch.zeros_like(x[:, -1:])], dim=1)
        x = x + ta[:, :x.shape[1]]
        n = x.shape[1]
        mask = torch.full((n, n), float('-inf')).triu(1)
        c = cond_tok[:, None] + self.timesteps_embeddings[:, :n]
        for blk in self.blocks:
            x = blk(x, mask, c)
        x, c = x[:, 1:], c[:, 1:]
        return self.lm_head(self.adaln_before_head(x, c)), labels


def _official_file(tmp_path, seed=0):
    torch.manual_seed(seed)
    ref = _RefRAR().eval()
    path = str(tmp_path / 'rar_tiny.bin')
    torch.save(ref.state_dict(), path)
    return ref, path


def _ours(path=None):
    gen = RARTransformer(arch=ARCH, codebook_size=K, num_classes=C, image_seq_len=L,
                         init_cfg=path and dict(type='Pretrained', checkpoint=path))
    gen.init_weights()
    return gen.eval()


def test_full_size_keys_and_counts():
    with torch.device('meta'):
        gen = RARTransformer('b')
    counts = sum(p.numel() for p in gen.parameters())
    assert abs(counts / 1e6 - 261) < 1  # RAR-B: 261M parameters
    sd = gen.state_dict()
    assert sd['embeddings.weight'].shape == (2026, 768)
    assert sd['pos_embed'].shape == (1, 256 + 1024, 768)
    assert sd['timesteps_embeddings'].shape == (1, 356, 768)
    assert sd['blocks.0.adaLN_modulation.1.weight'].shape == (6 * 768, 768)
    assert sd['blocks.0.attn.q_norm.weight'].shape == (48, )
    assert sd['adaln_before_head.adaLN_modulation.1.weight'].shape == (2 * 768, 768)
    assert sd['lm_head.weight'].shape == (1024, 768)
    assert len([k for k in sd if k.startswith('blocks.23.')]) == 18
    assert len([k for k in sd if k.startswith('blocks.')]) == 24 * 18


def test_fresh_model_is_adaln_zero():
    gen = _ours()
    for blk in gen.blocks:
        assert not blk.adaLN_modulation[1].weight.any() and not blk.adaLN_modulation[1].bias.any()
    assert not gen.adaln_before_head.adaLN_modulation[1].weight.any()
    assert not gen.cls_token.any()


def test_official_layout_loads_strictly_and_logits_match(tmp_path):
    ref, path = _official_file(tmp_path)
    gen = _ours(path)
    assert set(gen.state_dict()) == set(ref.state_dict())
    torch.manual_seed(1)
    ids = torch.randint(0, K, (3, L))
    cond = torch.randint(0, C, (3, )) + K + 1
    cond[2] = K + 1 + C  # the null class
    orders = torch.stack([torch.randperm(L), torch.arange(L), torch.randperm(L)])
    with torch.no_grad():
        ref_logits, ref_labels = ref(ids, cond, orders)
        logits, targets = gen(ids, cond, orders)
    assert logits.shape == (3, L + 1, K)
    assert torch.equal(targets, ref_labels)
    assert (logits - ref_logits).abs().max() <= 1e-5
    # the loss: cross-entropy of logits[:, :-1] against the permuted labels
    from mmmim.models.algorithms import RAR
    model = RAR(generator=dict(type='RARTransformer', arch=ARCH, codebook_size=K, num_classes=C,
                               image_seq_len=L, init_cfg=dict(type='Pretrained', checkpoint=path)),
                class_label_dropout=0.0, random_ratio=1.0)
    model.init_weights()
    model.eval()
    torch.manual_seed(5)
    losses = model.loss(ids, dict(gt_label=torch.tensor([0, 1, 2])))
    torch.manual_seed(5)
    orders = model.generator.sample_orders(3, 1.0)
    with torch.no_grad():
        ref_logits, ref_labels = ref(ids, torch.tensor([0, 1, 2]) + K + 1, orders)
    ref_loss = F.cross_entropy(ref_logits[:, :-1].permute(0, 2, 1), ref_labels)
    assert abs(losses['loss'].item() - ref_loss.item()) <= 1e-5


def test_bad_files_are_clear_errors(tmp_path):
    ref, path = _official_file(tmp_path)
    sd = ref.state_dict()
    sd.pop('lm_head.bias')
    torch.save(sd, str(tmp_path / 'short.bin'))
    with pytest.raises(KeyError, match='lm_head.bias'):
        _ours(str(tmp_path / 'short.bin'))
    torch.save({'foo': torch.zeros(1)}, str(tmp_path / 'other.bin'))
    with pytest.raises(ValueError, match='not a RAR generator'):
        _ours(str(tmp_path / 'other.bin'))
    with pytest.raises(KeyError, match='wrong shapes'):
        RARTransformer(arch=ARCH, codebook_size=K + 1, num_classes=C, image_seq_len=L,
                       init_cfg=dict(type='Pretrained', checkpoint=path)).init_weights()


def test_mmmim_checkpoint_of_the_algorithm_loads(tmp_path):
    ref, path = _official_file(tmp_path)
    gen = _ours(path)
    mm = str(tmp_path / 'iter_10.pth')
    torch.save({'state_dict': {'generator.' + k: v for k, v in gen.state_dict().items()},
                'meta': {}}, mm)
    again = _ours(mm)
    for k, v in gen.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])


def test_orders_and_condition_dropout():
    gen = _ours()
    torch.manual_seed(0)
    raster = gen.sample_orders(4, 0.0)
    assert torch.equal(raster, torch.arange(L).repeat(4, 1))
    perm = gen.sample_orders(64, 1.0)
    assert all(torch.equal(o.sort().values, torch.arange(L)) for o in perm)
    assert (perm != torch.arange(L)).any(1).float().mean() > 0.9
    half = gen.sample_orders(400, 0.5)
    frac = (half != torch.arange(L)).any(1).float().mean().item()
    assert 0.4 < frac < 0.6
    labels = torch.arange(C).repeat(250)
    ids = gen.condition_ids(labels, 0.1)
    dropped = (ids == K + 1 + C).float().mean().item()
    assert 0.07 < dropped < 0.13
    kept = ids != K + 1 + C
    assert torch.equal(ids[kept], labels[kept] + K + 1)
    with pytest.raises(ValueError, match='class labels'):
        gen.condition_ids(torch.tensor([C]))


def _reference_sample(ref, labels, gs, power, temperature, seed):
    """The official sampling loop on the reference model: no cache, CFG with a doubled batch."""
    g = torch.Generator().manual_seed(seed)
    B = labels.shape[0]
    cond = labels + K + 1
    ids = torch.zeros(B, 0, dtype=torch.long)
    raster = torch.arange(L).repeat(2 * B, 1)
    for step in range(L):
        scale = (gs - 1) * (1 - math.cos(math.pi * (step / L)**power)) / 2 + 1
        logits, _ = ref(torch.cat([ids, ids]), torch.cat([cond, torch.full_like(cond, K + 1 + C)]),
                        raster, sampling=True)
        c, u = logits[:B, -1], logits[B:, -1]
        logits = u + (c - u) * scale
        ids = torch.cat([ids, torch.multinomial(F.softmax(logits / temperature, -1), 1,
                                                generator=g)], 1)
    return ids


def test_sampling_with_cache_equals_without_and_the_reference(tmp_path):
    ref, path = _official_file(tmp_path)
    gen = _ours(path)
    labels = torch.tensor([0, 3, 1])
    kw = dict(guidance_scale=4.0, guidance_scale_pow=2.75, temperature=1.0)
    cached = gen.generate(labels, use_cache=True, generator=torch.Generator().manual_seed(7), **kw)
    plain = gen.generate(labels, use_cache=False, generator=torch.Generator().manual_seed(7), **kw)
    assert cached.shape == (3, L)
    assert torch.equal(cached, plain)
    with torch.no_grad():
        expected = _reference_sample(ref, labels, 4.0, 2.75, 1.0, seed=7)
    assert torch.equal(cached, expected)
    # no guidance: one pass per step
    a = gen.generate(labels, guidance_scale=0.0, generator=torch.Generator().manual_seed(3))
    b = gen.generate(labels, guidance_scale=0.0, use_cache=False,
                     generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_guidance_schedule():
    from mmmim.models.generators import guidance_scale_at
    assert guidance_scale_at(0, 256, 16.0, 2.75) == 1.0
    assert abs(guidance_scale_at(256, 256, 16.0, 2.75) - 16.0) < 1e-9
    mid = (16 - 1) * (1 - math.cos(math.pi * 0.5**2.75)) / 2 + 1
    assert abs(guidance_scale_at(128, 256, 16.0, 2.75) - mid) < 1e-12


def test_registered_and_train_step_learns():
    model = MODELS.build(dict(type='RAR', generator=dict(
        type='RARTransformer', arch=ARCH, codebook_size=K, num_classes=C, image_seq_len=L,
        drop=0.0, attn_drop=0.0), class_label_dropout=0.1, random_ratio=0.5))
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=3e-3))
    ids = torch.randint(0, K, (8, L))
    data = dict(inputs=ids, data_samples=dict(gt_label=torch.arange(8) % C))
    first = model.train_step(data, wrapper)['loss'].item()
    for _ in range(30):
        last = model.train_step(data, wrapper)['loss'].item()
    assert last < first - 0.5
