"""The DALL-E dVAE encoder: the official pickled weights load strictly and give the same logits."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mmmim.models.tokenizers import DALLEEncoder

# A stand-in for the dall_e package with the official encoder structure and
# forward (small widths), written from the published architecture.
FAKE_DALL_E = {
    'dall_e/__init__.py': '',
    'dall_e/utils.py': '''
        import torch
        import torch.nn.functional as F
        from torch import nn

        class Conv2d(nn.Module):
            def __init__(self, n_in, n_out, kw):
                super().__init__()
                self.kw = kw
                self.w = nn.Parameter(torch.randn(n_out, n_in, kw, kw) * 0.3)
                self.b = nn.Parameter(torch.randn(n_out) * 0.1)

            def forward(self, x):
                return F.conv2d(x, self.w, self.b, padding=(self.kw - 1) // 2)
    ''',
    'dall_e/encoder.py': '''
        from collections import OrderedDict
        from torch import nn
        from .utils import Conv2d

        class EncoderBlock(nn.Module):
            def __init__(self, n_in, n_out, n_layers):
                super().__init__()
                n_hid = n_out // 4
                self.post_gain = 1 / n_layers ** 2
                self.id_path = Conv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
                self.res_path = nn.Sequential(OrderedDict([
                    ('relu_1', nn.ReLU()), ('conv_1', Conv2d(n_in, n_hid, 3)),
                    ('relu_2', nn.ReLU()), ('conv_2', Conv2d(n_hid, n_hid, 3)),
                    ('relu_3', nn.ReLU()), ('conv_3', Conv2d(n_hid, n_hid, 3)),
                    ('relu_4', nn.ReLU()), ('conv_4', Conv2d(n_hid, n_out, 1))]))

            def forward(self, x):
                return self.id_path(x) + self.post_gain * self.res_path(x)

        class Encoder(nn.Module):
            def __init__(self, n_hid=8, vocab_size=32, group_count=4, n_blk=2):
                super().__init__()
                n_layers = group_count * n_blk
                groups = [('input', Conv2d(3, n_hid, 7))]
                w = n_hid
                for g in range(group_count):
                    out = n_hid * 2 ** g
                    blocks = []
                    for i in range(n_blk):
                        blocks.append((f'block_{i + 1}', EncoderBlock(w, out, n_layers)))
                        w = out
                    if g < group_count - 1:
                        blocks.append(('pool', nn.MaxPool2d(kernel_size=2)))
                    groups.append((f'group_{g + 1}', nn.Sequential(OrderedDict(blocks))))
                groups.append(('output', nn.Sequential(OrderedDict([
                    ('relu', nn.ReLU()), ('conv', Conv2d(w, vocab_size, 1))]))))
                self.blocks = nn.Sequential(OrderedDict(groups))

            def forward(self, x):
                return self.blocks(x)
    ''',
}

SAVE = '''
import torch
from dall_e.encoder import Encoder
torch.manual_seed(0)
enc = Encoder()
torch.save(enc, 'encoder.pkl')
x = torch.rand(2, 3, 32, 32) * 0.8 + 0.1
torch.save({'x': x, 'logits': enc(x).detach()}, 'reference.pth')
'''


@pytest.fixture(scope='module')
def official_encoder(tmp_path_factory):
    root = tmp_path_factory.mktemp('dalle_full')
    for name, text in FAKE_DALL_E.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    subprocess.run([sys.executable, '-c', SAVE], cwd=root, check=True,
                   env=dict(os.environ, PYTHONPATH=str(root)))
    os.rename(root / 'dall_e', root / 'not_importable')
    return root


def test_pickled_official_encoder_loads_and_matches(official_encoder):
    enc = DALLEEncoder(n_hid=8, vocab_size=32,
                       init_cfg=dict(type='Pretrained', checkpoint=str(official_encoder / 'encoder.pkl')))
    enc.init_weights()
    ref = torch.load(official_encoder / 'reference.pth')
    logits = enc(ref['x'])
    assert logits.shape == (2, 32, 4, 4)
    torch.testing.assert_close(logits, ref['logits'], atol=1e-5, rtol=0)
    tokens = enc.get_codebook_indices(ref['x'])
    assert tokens.shape == (2, 16)
    assert torch.equal(tokens, ref['logits'].argmax(1).flatten(1))


def test_wrong_widths_name_the_file(official_encoder):
    enc = DALLEEncoder(n_hid=16, vocab_size=32,
                       init_cfg=dict(type='Pretrained', checkpoint=str(official_encoder / 'encoder.pkl')))
    with pytest.raises((KeyError, RuntimeError), match='encoder.pkl'):
        enc.init_weights()


def test_tokenizer_stays_frozen():
    enc = DALLEEncoder(n_hid=8, vocab_size=32)
    enc.train()
    assert not enc.training
    assert not any(p.requires_grad for p in enc.parameters())
