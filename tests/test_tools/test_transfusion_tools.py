"""tools/generate_transfusion.py and the Transfusion benchmark, on tiny models."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ..conftest import REPO

DEMO = 'configs/transfusion/transfusion-demo-p4_1xb32-1000i_demo-captions.py'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory, demo_bpe_tokenizer):
    """A seeded tiny model of the demo config, saved as a tools/train.py checkpoint."""
    from mmmim.registry import MODELS
    opts = [f'model.tokenizer={demo_bpe_tokenizer}', 'model.generator.arch.embed_dim=32',
            'model.generator.arch.depth=1', 'model.generator.arch.num_heads=4']
    cfg = Config.fromfile(osp.join(REPO, DEMO))
    cfg.merge_from_dict({k: v if k == 'model.tokenizer' else int(v)
                         for k, v in (o.split('=', 1) for o in opts)})
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmmim'):
        model = MODELS.build(cfg.model)
    path = str(tmp_path_factory.mktemp('tf') / 'iter_1.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path, opts


def generate_tool():
    """tools/generate_transfusion.py as a module (run in this process: one import of mmmim)."""
    spec = importlib.util.spec_from_file_location(
        'generate_transfusion', osp.join(REPO, 'tools', 'generate_transfusion.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_tool_scores_the_demo(tiny, demo_captions, tmp_path):
    ckpt, opts = tiny
    d = demo_captions
    tool = generate_tool()
    metrics, grid = str(tmp_path / 'm.json'), str(tmp_path / 'grid.png')
    args = [osp.join(REPO, DEMO), ckpt, '--num-images', '16', '--device', 'cpu',
            '--eval', osp.join(d, 'annotations', 'captions_val.json'),
            '--image-root', osp.join(d, 'images', 'val'),
            '--train-ann', osp.join(d, 'annotations', 'captions_train.json'),
            '--train-image-root', osp.join(d, 'images', 'train'), '--steps', '2',
            '--max-new-tokens', '4', '--grid', grid, '--metrics-out', metrics,
            '--cfg-options', *opts]
    tool.main(args)
    scores = json.load(open(metrics))
    # the judge reads real validation images right: it is fit to judge samples
    assert scores['judge_on_real/shape+color'] > 0.95 and scores['judge_on_real/position'] > 0.95
    for key in ('text2image/shape+color', 'image2text/color', 'image2text/CIDEr',
                'image2text/BLEU-4', 'other_image_caption/CIDEr'):
        assert key in scores
    assert 0 < scores['other_image_caption/CIDEr'] < 5  # templated captions, wrong attributes
    assert osp.getsize(grid) > 0
    with pytest.raises(SystemExit, match='--force'):
        tool.main(args)
    out = str(tmp_path / 's.png')
    tool.main([osp.join(REPO, DEMO), ckpt, '--prompts', 'a red ring in the upper left',
               '--num-per-prompt', '2', '--steps', '2', '--out', out, '--device', 'cpu',
               '--cfg-options', *opts])
    from PIL import Image
    assert Image.open(out).size == (2 + 2 * (32 * 4 + 2), 2 + 32 * 4 + 2)  # one row of 2


def test_benchmark_runs_on_the_cpu(capsys):
    path = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_transfusion.py')
    spec = importlib.util.spec_from_file_location('benchmark_transfusion', path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = 'configs/transfusion/transfusion-0.16b-p2_64xb112-bf16-250ki_captions-256.py'
    bench.main([osp.join(REPO, config),
                '--arch', '32,1,4', '--seq-len', '160', '--patches', '16', '--batch-size', '1',
                '--iters', '1', '--warmup', '1', '--amp', 'none', '--device', 'cpu'])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if 'tokens/s' in ln]
    assert len(lines) == 2 and lines[0].startswith('flex:') and lines[1].startswith('sdpa:')
    assert '3 images' in lines[0] and 'train step' in lines[1]
