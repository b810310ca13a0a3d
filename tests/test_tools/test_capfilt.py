"""tools/misc/capfilt.py and tools/misc/corrupt_captions.py on the captioned demo data."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmmim.datasets.captions import load_caption_annotations

from ..conftest import REPO


def tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', 'misc', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def models(tmp_path_factory, demo_wordpiece_vocab):
    """Captioner and filter configs (the BLIP demos) with seeded initial weights."""
    import mmmim  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmmim.registry import MODELS
    out = tmp_path_factory.mktemp('capfilt_models')
    paths = {}
    for role, name in (('captioner', 'blip-caption_vit-demo-p8_1xb32-10e_demo-captions.py'),
                       ('filter', 'blip_vit-demo-p8_1xb32-20e_demo-captions.py')):
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'blip', name))
        cfg.model.tokenizer = demo_wordpiece_vocab
        cfg.model.init_cfg = None
        cfg_path, ckpt = str(out / f'{role}.py'), str(out / f'{role}.pth')
        cfg.dump(cfg_path)
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope('mmmim'):
            torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, ckpt)
        paths[role] = [cfg_path, ckpt]
    return paths


@pytest.fixture
def annotations(demo_captions, tmp_path):
    """Six demo val images (12 captions) plus one unreadable image, LAVIS layout."""
    entries = load_caption_annotations(osp.join(demo_captions, 'annotations', 'captions_val.json'))
    lavis = [dict(image=e['image'], caption=c, image_id=e['image_id'])
             for e in entries[:6] for c in e['captions']]
    (tmp_path / 'broken.jpg').write_bytes(b'not a jpeg')
    lavis.append(dict(image=str(tmp_path / 'broken.jpg'), caption='a red disc', image_id=999))
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(lavis))
    return str(path), osp.join(demo_captions, 'images', 'val')


def run_capfilt(models, ann, root, out, *extra):
    capfilt = tool('capfilt')
    args = capfilt.parse_args([ann, '--image-root', root, '--captioner', *models['captioner'],
                               '--filter', *models['filter'], '--out', out, '--device', 'cpu',
                               '--batch-size', '4', '--max-length', '16', '--min-length', '6',
                               *extra])
    return capfilt.run(args)


def test_capfilt_keeps_captions_above_the_threshold(models, annotations, tmp_path, capsys):
    ann, root = annotations
    out, scores_path = str(tmp_path / 'capfilt.json'), str(tmp_path / 'scores.json')
    counts = run_capfilt(models, ann, root, out, '--threshold', '0.5', '--scores', scores_path,
                         '--num-captions', '2')
    log = capsys.readouterr().out
    assert '1 skipped (unreadable)' in log
    assert counts['web_kept'] + counts['web_dropped'] == 12  # the broken image is not scored
    assert counts['synthetic_kept'] + counts['synthetic_dropped'] == 12  # 6 images x 2
    scores = json.load(open(scores_path))
    kept = json.load(open(out))
    assert len(kept) == sum(s['kept'] for s in scores) == counts['web_kept'] + counts['synthetic_kept']
    assert all(s['kept'] == (s['itm_score'] > 0.5) for s in scores)
    assert all(set(k) == {'image', 'caption', 'image_id'} for k in kept)
    load_caption_annotations(out) if kept else None  # the output reads back as LAVIS JSON
    # a threshold at the median keeps the upper half
    median = sorted(s['itm_score'] for s in scores)[len(scores) // 2]
    with pytest.raises(SystemExit, match='exists; pass --force'):
        run_capfilt(models, ann, root, out, '--threshold', str(median))
    counts = run_capfilt(models, ann, root, out, '--threshold', str(median), '--force',
                         '--num-captions', '0')
    web = [s for s in scores if s['source'] == 'web']
    assert counts['web_kept'] == sum(s['itm_score'] > median for s in web)


def test_corrupt_then_filter_reports_noisy_drops(models, annotations, tmp_path, capsys):
    ann, root = annotations
    corrupted, noisy = str(tmp_path / 'noisy.json'), str(tmp_path / 'noisy_pairs.json')
    tool('corrupt_captions').main([ann, corrupted, '--noisy', noisy, '--fraction', '0.5'])
    pairs = json.load(open(noisy))
    original = {e['image_id']: e['captions'] for e in load_caption_annotations(ann)}
    assert pairs and all(c not in original[i] for i, c in pairs)
    assert len(json.load(open(corrupted))) == 13
    run_capfilt(models, corrupted, root, str(tmp_path / 'out.json'), '--noisy', noisy,
                '--num-captions', '0')
    assert f'/ {len([p for p in pairs if p[0] != 999])}; clean web captions dropped' in \
        capsys.readouterr().out
