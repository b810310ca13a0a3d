"""Reading large files shows progress; official training files with their ``args`` load safely."""
import argparse

import torch

import mmmim.checkpoint.io as ckpt_io


def test_large_files_show_progress_and_same_content(tmp_path, monkeypatch, capsys):
    path = str(tmp_path / 'big.pth')
    weights = {'w': torch.randn(512, 1024)}  # 2 MiB
    torch.save({'model': weights}, path)
    monkeypatch.setattr(ckpt_io, 'PROGRESS_MIN_BYTES', 1 << 20)
    ckpt = ckpt_io.read_checkpoint(path)
    assert torch.equal(ckpt['model']['w'], weights['w'])
    assert '2/2' in capsys.readouterr().out  # MiB read / MiB in the file


def test_small_files_load_quietly(tmp_path, capsys):
    path = str(tmp_path / 'small.pth')
    torch.save({'model': {'w': torch.ones(2)}}, path)
    ckpt_io.read_checkpoint(path)
    assert capsys.readouterr().out == ''


def test_official_training_checkpoint_with_args_loads_weights_only(tmp_path):
    path = str(tmp_path / 'checkpoint-799.pth')
    torch.save({'model': {'w': torch.ones(2)}, 'epoch': 799,
                'args': argparse.Namespace(lr=1.5e-3, model='cae_base_patch16_224')}, path)
    ckpt = ckpt_io.read_checkpoint(path)
    assert ckpt['args'].lr == 1.5e-3 and torch.equal(ckpt['model']['w'], torch.ones(2))
