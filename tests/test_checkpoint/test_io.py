"""Reading: progress for large files and downloads, official training files with their
``args`` load safely. Writing: safetensors files get flat tensors."""
import argparse
import functools
import http.server
import threading

import pytest
import torch
from safetensors.torch import load_file

import mmmim.checkpoint.io as ckpt_io


def test_large_files_report_progress_in_two_lines_and_same_content(tmp_path, monkeypatch,
                                                                    capsys):
    path = str(tmp_path / 'big.pth')
    weights = {'w': torch.randn(512, 1024)}  # 2 MiB
    torch.save({'model': weights}, path)
    monkeypatch.setattr(ckpt_io, 'PROGRESS_MIN_BYTES', 1 << 20)
    ckpt = ckpt_io.read_checkpoint(path)
    assert torch.equal(ckpt['model']['w'], weights['w'])
    out = capsys.readouterr().out  # not a terminal: no bar frames
    assert '\r' not in out
    start, end = out.splitlines()
    assert start == f'reading {path} (3 MiB)'  # 2 MiB of tensors and the zip records
    assert end.startswith(f'reading {path}: 3/3 MiB in ')


def test_small_files_load_quietly(tmp_path, capsys):
    path = str(tmp_path / 'small.pth')
    torch.save({'model': {'w': torch.ones(2)}}, path)
    ckpt_io.read_checkpoint(path)
    assert capsys.readouterr().out == ''


def test_download_reports_progress_in_two_lines(tmp_path, monkeypatch, capsys):
    served = tmp_path / 'served'
    served.mkdir()
    weights = {'w': torch.randn(512, 1024)}
    torch.save({'model': weights}, served / 'mae.pth')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    url = f'http://127.0.0.1:{server.server_address[1]}/mae.pth'
    try:
        ckpt = ckpt_io.read_checkpoint(url)
    finally:
        server.shutdown()
    assert torch.equal(ckpt['model']['w'], weights['w'])
    out = capsys.readouterr().out
    assert '\r' not in out
    assert out.splitlines()[0] == f'downloading {url} (3 MiB)'
    assert out.splitlines()[1].startswith(f'downloading {url}: 3/3 MiB in ')
    assert sorted(p.name for p in (tmp_path / 'hub' / 'checkpoints').iterdir()) == ['mae.pth']


def test_official_training_checkpoint_with_args_loads_weights_only(tmp_path):
    path = str(tmp_path / 'checkpoint-799.pth')
    torch.save({'model': {'w': torch.ones(2)}, 'epoch': 799,
                'args': argparse.Namespace(lr=1.5e-3, model='cae_base_patch16_224')}, path)
    ckpt = ckpt_io.read_checkpoint(path)
    assert ckpt['args'].lr == 1.5e-3 and torch.equal(ckpt['model']['w'], torch.ones(2))


def test_safetensors_get_the_flat_tensors_of_any_wrapping(tmp_path):
    sd = {'blocks.0.attn.qkv.weight': torch.randn(6, 2).T, 'cls_token': torch.zeros(1, 1, 2)}
    for i, obj in enumerate([sd, {'model': sd}, {'state_dict': sd, 'meta': {'epoch': 3}}]):
        dst = str(tmp_path / f'{i}.safetensors')
        ckpt_io.write_checkpoint(obj, dst)
        back = load_file(dst)
        assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd)
    with pytest.raises(TypeError, match='epoch'):
        ckpt_io.write_checkpoint(dict(sd, epoch=3), str(tmp_path / 'bad.safetensors'))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        '0.safetensors', '1.safetensors', '2.safetensors']  # no temporary file left
