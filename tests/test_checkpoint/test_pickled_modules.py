"""The DALL-E ``encoder.pkl`` reader: tensors out, no code run, no dall_e package needed."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mmmim.checkpoint import read_dalle_encoder

# A stand-in for the dall_e package with the official module structure (attrs
# classes there, plain modules here; the pickle names the same classes).
FAKE_DALL_E = {
    'dall_e/__init__.py': '',
    'dall_e/utils.py': '''
        import torch
        from torch import nn

        class Conv2d(nn.Module):
            def __init__(self, n_in, n_out, kw):
                super().__init__()
                self.n_in, self.n_out, self.kw = n_in, n_out, kw
                self.device = torch.device('cpu')
                self.w = nn.Parameter(torch.randn(n_out, n_in, kw, kw))
                self.b = nn.Parameter(torch.randn(n_out))
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
                    ('relu_2', nn.ReLU()), ('conv_2', Conv2d(n_hid, n_out, 1))]))

        class Encoder(nn.Module):
            def __init__(self, n_hid=8, vocab_size=16):
                super().__init__()
                self.vocab_size = vocab_size
                self.blocks = nn.Sequential(OrderedDict([
                    ('input', Conv2d(3, n_hid, 7)),
                    ('group_1', nn.Sequential(OrderedDict([
                        ('block_1', EncoderBlock(n_hid, n_hid, 2)),
                        ('block_2', EncoderBlock(n_hid, 2 * n_hid, 2)),
                        ('pool', nn.MaxPool2d(kernel_size=2))]))),
                    ('output', nn.Sequential(OrderedDict([
                        ('relu', nn.ReLU()), ('conv', Conv2d(2 * n_hid, vocab_size, 1))])))]))
    ''',
}

SAVE = '''
import torch
from dall_e.encoder import Encoder
torch.manual_seed(0)
enc = Encoder()
torch.save(enc, 'encoder.pkl')
torch.save(enc.state_dict(), 'reference.pth')
'''


@pytest.fixture(scope='module')
def encoder_pkl(tmp_path_factory):
    root = tmp_path_factory.mktemp('dalle')
    for name, text in FAKE_DALL_E.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    subprocess.run([sys.executable, '-c', SAVE], cwd=root, check=True,
                   env=dict(os.environ, PYTHONPATH=str(root)))
    os.rename(root / 'dall_e', root / 'not_importable')  # the reader must not need it
    return root


def test_reads_every_tensor_without_the_package(encoder_pkl):
    assert 'dall_e' not in sys.modules
    tensors = read_dalle_encoder(str(encoder_pkl / 'encoder.pkl'))
    reference = torch.load(encoder_pkl / 'reference.pth')
    assert tensors.keys() == reference.keys()
    assert 'blocks.group_1.block_2.id_path.w' in tensors
    assert all(torch.equal(tensors[k], reference[k]) for k in reference)
    assert 'dall_e' not in sys.modules


class Payload:
    def __reduce__(self):
        return os.system, ('echo should-not-run',)


def test_code_in_the_pickle_does_not_run(tmp_path):
    path = tmp_path / 'evil.pkl'
    torch.save(Payload(), path)
    with pytest.raises(ValueError, match='evil.pkl'):
        read_dalle_encoder(str(path))
    torch.save({'w': torch.ones(1)}, tmp_path / 'weights.pth')
    with pytest.raises(ValueError, match='not hold a pickled DALL-E module'):
        read_dalle_encoder(str(tmp_path / 'weights.pth'))
