"""MaskGIT-VQGAN against a written-out copy of the official module structure
(bytedance/1d-tokenizer modeling/modules/maskgit_vqgan.py): same keys, ids and pixels."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmmim.models.tokenizers.maskgit_vqgan import MaskGITVQGAN
from mmmim.registry import MODELS


# ----------------------------------------------------------------------------------------
# Reference: the official structure, written out (TF-style "same" padding, config object).
class _SameConv(nn.Conv2d):
    def forward(self, x):
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


class _RefRes(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.cin, self.cout = cin, cout
        self.norm1 = nn.GroupNorm(32, cin, eps=1e-6)
        self.conv1 = _SameConv(cin, cout, 3, bias=False)
        self.norm2 = nn.GroupNorm(32, cout, eps=1e-6)
        self.conv2 = _SameConv(cout, cout, 3, bias=False)
        if cin != cout:
            self.nin_shortcut = _SameConv(cout, cout, 1, bias=False)

    def forward(self, x):
        res = x
        x = self.conv1(F.silu(self.norm1(x)))
        x = self.conv2(F.silu(self.norm2(x)))
        if self.cin != self.cout:
            res = self.nin_shortcut(x)  # the official quirk
        return x + res


class _RefDown(nn.Module):
    def __init__(self, c, i):
        super().__init__()
        mult_in = (1, ) + tuple(c['channel_mult'])
        bi, bo = c['hidden'] * mult_in[i], c['hidden'] * c['channel_mult'][i]
        blocks = []
        for _ in range(c['num_res']):
            blocks.append(_RefRes(bi, bo))
            bi = bo
        self.block = nn.ModuleList(blocks)
        self.down = i != len(c['channel_mult']) - 1

    def forward(self, x):
        for b in self.block:
            x = b(x)
        return F.avg_pool2d(x, 2, 2) if self.down else x


class _RefUp(nn.Module):
    def __init__(self, c, i):
        super().__init__()
        n = len(c['channel_mult'])
        bi = c['hidden'] * c['channel_mult'][-1 if i == n - 1 else i + 1]
        bo = c['hidden'] * c['channel_mult'][i]
        blocks = []
        for _ in range(c['num_res']):
            blocks.append(_RefRes(bi, bo))
            bi = bo
        self.block = nn.ModuleList(blocks)
        self.up = i != 0
        if self.up:
            self.upsample_conv = _SameConv(bo, bo, 3)

    def forward(self, x):
        for b in self.block:
            x = b(x)
        if self.up:
            x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))
        return x


class _RefEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_in = _SameConv(3, c['hidden'], 3, bias=False)
        self.down = nn.ModuleList(_RefDown(c, i) for i in range(len(c['channel_mult'])))
        m = c['hidden'] * c['channel_mult'][-1]
        self.mid = nn.ModuleList(_RefRes(m, m) for _ in range(c['num_res']))
        self.norm_out = nn.GroupNorm(32, m, eps=1e-6)
        self.conv_out = _SameConv(m, c['z'], 1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down:
            x = b(x)
        for b in self.mid:
            x = b(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class _RefDecoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        n = len(c['channel_mult'])
        bi = c['hidden'] * c['channel_mult'][n - 1]
        self.conv_in = _SameConv(c['z'], bi, 3)
        self.mid = nn.ModuleList(_RefRes(bi, bi) for _ in range(c['num_res']))
        ups = [_RefUp(c, i) for i in reversed(range(n))]
        self.up = nn.ModuleList(list(reversed(ups)))
        bo = c['hidden'] * c['channel_mult'][0]
        self.norm_out = nn.GroupNorm(32, bo, eps=1e-6)
        self.conv_out = _SameConv(bo, 3, 3)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.mid:
            x = b(x)
        for b in reversed(self.up):
            x = b(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class _RefQuantize(nn.Module):
    def __init__(self, k, d):
        super().__init__()
        self.embedding = nn.Embedding(k, d)

    def ids(self, z):  # [B, D, h, w] -> [B, h*w], torch.addmm distances as the official code
        h = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        e = self.embedding.weight.t()
        d = torch.addmm(h.pow(2).sum(1, keepdim=True) + e.pow(2).sum(0, keepdim=True), h, e,
                        alpha=-2.0)
        return d.argmin(1).reshape(z.shape[0], -1)

    def entry(self, ids):  # [B, h, w] -> [B, D, h, w]
        return self.embedding(ids).permute(0, 3, 1, 2)


class _RefTokenizer(nn.Module):
    def __init__(self, c, k, d):
        super().__init__()
        self.encoder, self.decoder = _RefEncoder(c), _RefDecoder(c)
        self.quantize = _RefQuantize(k, d)


TINY = dict(hidden=32, channel_mult=(1, 1, 2), num_res=2, z=32)


def _ref(c=TINY, k=64, seed=0):
    torch.manual_seed(seed)
    ref = _RefTokenizer(c, k, c['z']).eval()
    with torch.no_grad():  # non-trivial norms and codebook
        for m in ref.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        ref.quantize.embedding.weight.normal_()
    return ref


def _ours(checkpoint, c=TINY, k=64):
    model = MODELS.build(dict(type='MaskGITVQGAN', hidden_channels=c['hidden'],
                              channel_mult=c['channel_mult'], num_res_blocks=c['num_res'],
                              z_channels=c['z'], num_embeddings=k,
                              init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))
    model.init_weights()
    return model.eval()


def test_official_layout_loads_strictly_and_matches(tmp_path):
    ref = _ref()
    path = str(tmp_path / 'maskgit-vqgan-tiny.bin')
    torch.save(ref.state_dict(), path)  # the official file: a flat state dict
    ours = _ours(path)
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        ref_ids = ref.quantize.ids(ref.encoder(x)).view(2, 8, 12)
        ids = ours.encode(x)
        assert ids.shape == (2, 8, 12)
        assert torch.equal(ids, ref_ids)
        ref_img = ref.decoder(ref.quantize.entry(ref_ids)).clamp(0, 1)
        img = ours.decode(ids)
    assert img.shape == (2, 3, 32, 48)
    assert (img - ref_img).abs().max() <= 1e-5
    # the quirk matters: a width-changing block differs from the usual shortcut on the input
    blk = ours.encoder.down[2].block[0]
    assert blk.in_channels != blk.out_channels and hasattr(blk, 'nin_shortcut')


def test_f16_default_has_the_official_keys_and_shapes():
    c = dict(hidden=128, channel_mult=(1, 1, 2, 2, 4), num_res=2, z=256)
    ref = _RefTokenizer(c, 1024, 256)
    ours = MaskGITVQGAN()
    ref_shapes = {k: v.shape for k, v in ref.state_dict().items()}
    our_shapes = {k: v.shape for k, v in ours.state_dict().items()}
    assert our_shapes == ref_shapes
    assert ours.downsample_factor == 16


def test_mismatched_file_is_a_clear_error(tmp_path):
    ref = _ref()
    sd = ref.state_dict()
    sd.pop('quantize.embedding.weight')
    path = str(tmp_path / 'broken.bin')
    torch.save(sd, path)
    with pytest.raises(KeyError, match='quantize.embedding.weight'):
        _ours(path)


def test_training_losses_and_gan_step(tmp_path):
    from mmengine.optim import OptimWrapperDict

    from mmmim.engine import GANOptimWrapperConstructor
    torch.manual_seed(0)
    model = MaskGITVQGAN(hidden_channels=32, channel_mult=(1, 2), num_res_blocks=1, z_channels=32,
                         num_embeddings=16, l2_weight=1.0,
                         discriminator=dict(type='PatchGANDiscriminator', base_channels=8,
                                            num_layers=2), disc_start=0,
                         data_preprocessor=dict(type='mmpretrain.SelfSupDataPreprocessor',
                                                mean=[0, 0, 0], std=[255, 255, 255]))
    x = torch.rand(2, 3, 16, 16)
    losses = model.loss(x)
    assert set(losses) == {'loss_codebook', 'loss_commit', 'loss_l1', 'loss_l2', 'used_codes'}
    # the VQ terms as written in VQ-VAE: ||z_q - sg z||^2 and 0.25 ||sg z_q - z||^2
    with torch.no_grad():
        z = model.encoder(x)
        z_q = model.quantize.embedding.weight[model.quantize.lookup(z)].permute(0, 3, 1, 2)
        assert torch.allclose(losses['loss_commit'], 0.25 * ((z - z_q)**2).mean())
        assert torch.allclose(losses['loss_codebook'], ((z - z_q)**2).mean())
    assert 1 <= losses['used_codes'] <= 16
    wrapper = GANOptimWrapperConstructor(dict(
        generator=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
        discriminator=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))))(model)
    assert isinstance(wrapper, OptimWrapperDict)
    d_before = [p.clone() for p in model.discriminator.parameters()]
    g_before = model.decoder.conv_out.weight.clone()
    data = dict(inputs=[(x * 255).to(torch.uint8)], data_samples=None)
    log = model.train_step(data, wrapper)
    assert {'loss', 'loss_g_adv', 'loss_d', 'used_codes'} <= set(log)
    assert not torch.equal(g_before, model.decoder.conv_out.weight)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    n_g = sum(p.numel() for g in wrapper['generator'].optimizer.param_groups for p in g['params'])
    assert n_g == sum(p.numel() for n, p in model.named_parameters()
                      if not n.startswith('discriminator.'))


def test_perceptual_loss_reads_named_files(tmp_path):
    from torchvision.models import vgg16

    from mmmim.models.tokenizers.maskgit_vqgan import VGGPerceptualLoss
    torch.manual_seed(0)
    path = str(tmp_path / 'vgg16.pth')
    torch.save({'features.' + k: v for k, v in vgg16().features.state_dict().items()}, path)
    lp = str(tmp_path / 'lpips_vgg.pth')
    torch.save({f'lin{i}.model.1.weight': torch.rand(1, c, 1, 1)
                for i, c in enumerate(VGGPerceptualLoss.WIDTHS)}, lp)
    loss = VGGPerceptualLoss(path, lp)
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert loss(x, x).item() == 0.0 and loss(x, y).item() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    with pytest.raises(FileNotFoundError):
        VGGPerceptualLoss(str(tmp_path / 'missing.pth'))
    torch.save({'foo': torch.zeros(1)}, str(tmp_path / 'bad.pth'))
    with pytest.raises(KeyError, match='vgg16'):
        VGGPerceptualLoss(str(tmp_path / 'bad.pth'))
