"""RAR end to end on the demo data: tokenise, dataset, r annealing and resume, the demo configs
in two processes, sampling to PNG / npz, and the official weight-decay rule."""
import glob
import os
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from ..conftest import REPO, dist_env, run_tool

VQ_DEMO = 'configs/rar/maskgit-vqgan-demo-f4_1xb16-3000i_demo.py'
RAR_DEMO = 'configs/rar/rar-demo_1xb32-1200i_demo.py'
ENV = dict(os.environ, OMP_NUM_THREADS='1')


def scalars(work_dir, key):
    out = {}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        for line in open(path):
            rec = json.loads(line)
            if key in rec:
                out[rec['iter']] = rec[key]
    return out


@pytest.fixture(scope='module')
def tokenizer_ckpt(tmp_path_factory):
    """The demo tokenizer's architecture with seeded random weights, as a tools/train.py file."""
    from mmengine.config import Config

    from mmmim.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, VQ_DEMO))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = str(tmp_path_factory.mktemp('tok') / 'tokenizer.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture(scope='module')
def token_file(tokenizer_ckpt, demo_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('tokens') / 'train.npz')
    run_tool([sys.executable, 'tools/misc/tokenize_images.py', VQ_DEMO, str(demo_root / 'train'),
              out, '--checkpoint', tokenizer_ckpt, '--size', '32'], env=ENV)
    return out


def test_tokenise_matches_the_tokenizer_and_the_dataset_reads_it(token_file, tokenizer_ckpt,
                                                                 demo_root):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    from misc.tokenize_images import build_tokenizer, center_crop
    from PIL import Image

    from mmmim.datasets import TokenDataset
    ds = TokenDataset(token_file, image_seq_len=64, codebook_size=256, num_classes=4)
    assert len(ds) == 2 * 4 * 16  # images and their flips
    assert ds.metainfo['classes'] == ('checker', 'disc', 'ring', 'stripes')  # sorted folders
    sample = ds[0]
    assert sample['inputs'].shape == (64, ) and sample['inputs'].dtype == torch.long
    tok = build_tokenizer(VQ_DEMO, tokenizer_ckpt)
    first = str(demo_root / 'train' / 'checker' / 'checker_0000.jpg')
    with Image.open(first) as img:
        arr = center_crop(img.convert('RGB'), 32)
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255
    assert torch.equal(ds.tokens[0], tok.encode(x).flatten())
    with np.load(token_file) as f:
        n = f['tokens'].shape[0]
        # the flipped copies follow their batch of originals: the first batch is 32 images
        assert torch.equal(torch.from_numpy(f['tokens'][32].astype(np.int64)).flatten(),
                           tok.encode(x.flip(-1)).flatten())
        assert n == 128 and int(f['labels'][0]) == 0
    # no overwrite without --force
    import subprocess
    proc = subprocess.run([sys.executable, 'tools/misc/tokenize_images.py', VQ_DEMO,
                           str(demo_root / 'train'), token_file, '--checkpoint', tokenizer_ckpt],
                          cwd=REPO, capture_output=True, text=True, env=ENV)
    assert proc.returncode != 0 and '--force' in proc.stderr


def test_token_dataset_errors(tmp_path, token_file):
    from mmmim.datasets import TokenDataset
    with pytest.raises(FileNotFoundError, match='missing.npz'):
        TokenDataset(str(tmp_path / 'missing.npz'))
    (tmp_path / 'junk.npz').write_text('not a zip')
    with pytest.raises(ValueError, match='junk.npz'):
        TokenDataset(str(tmp_path / 'junk.npz'))
    np.savez(str(tmp_path / 'nolabels.npz'), tokens=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match='labels'):
        TokenDataset(str(tmp_path / 'nolabels.npz'))
    with pytest.raises(ValueError, match='image_seq_len'):
        TokenDataset(token_file, image_seq_len=256)
    with pytest.raises(ValueError, match='codebook_size'):
        TokenDataset(token_file, codebook_size=2)
    (tmp_path / 'bad.jsonl').write_text('{"class_id": 1, "tokens": [1, 2]}\n{"oops": 1}\n')
    with pytest.raises(ValueError, match='bad.jsonl line 2'):
        TokenDataset(str(tmp_path / 'bad.jsonl'))
    (tmp_path / 'ok.jsonl').write_text('{"class_id": 1, "tokens": [1, 2, 3, 4]}\n'
                                       '{"class_id": 0, "tokens": [5, 6, 7, 8]}\n')
    ds = TokenDataset(str(tmp_path / 'ok.jsonl'), image_seq_len=4)
    assert ds[1]['inputs'].tolist() == [5, 6, 7, 8] and int(ds[1]['data_samples']['gt_label']) == 0


def _rar_options(token_file, tokenizer_ckpt, iters, start, end, schedule=None):
    schedule = schedule or iters  # the lr schedule's length
    return ['--cfg-options', f'train_dataloader.dataset.ann_file={token_file}',
            f'model.tokenizer.init_cfg.checkpoint={tokenizer_ckpt}', 'train_dataloader.batch_size=8',
            f'train_cfg.max_iters={iters}', f'custom_hooks.1.anneal_start={start}',
            f'custom_hooks.1.anneal_end={end}', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=3', 'log_processor.window_size=1',
            'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
            f'param_scheduler.1.end={schedule}', f'param_scheduler.1.T_max={schedule - 2}']


def test_r_annealing_is_logged_every_iteration_and_resumes(token_file, tokenizer_ckpt, tmp_path):
    full, part = str(tmp_path / 'full'), str(tmp_path / 'part')
    run_tool([sys.executable, 'tools/train.py', RAR_DEMO, '--work-dir', full,
              *_rar_options(token_file, tokenizer_ckpt, 6, 2, 4)], env=ENV)
    r = scalars(full, 'random_ratio')
    # iteration k (1-based in the log) runs with r(k - 1): 1 until 2, linear to 0 at 4
    assert r == {1: 1.0, 2: 1.0, 3: 1.0, 4: 0.5, 5: 0.0, 6: 0.0}
    run_tool([sys.executable, 'tools/train.py', RAR_DEMO, '--work-dir', part,
              *_rar_options(token_file, tokenizer_ckpt, 3, 2, 4, schedule=6)], env=ENV)
    run_tool([sys.executable, 'tools/train.py', RAR_DEMO, '--work-dir', part, '--resume',
              *_rar_options(token_file, tokenizer_ckpt, 6, 2, 4)], env=ENV)
    resumed = scalars(part, 'random_ratio')
    assert {k: v for k, v in resumed.items() if k > 3} == {4: 0.5, 5: 0.0, 6: 0.0}
    loss_full, loss_resumed = scalars(full, 'loss'), scalars(part, 'loss')
    for it in (4, 5, 6):
        assert loss_resumed[it] == pytest.approx(loss_full[it], abs=1e-5), it


def test_demo_configs_train_in_two_processes(token_file, tokenizer_ckpt, demo_root, tmp_path):
    env = dist_env()
    env['OMP_NUM_THREADS'] = '1'
    run_tool(['bash', 'tools/dist_train.sh', VQ_DEMO, '2', '--work-dir', str(tmp_path / 'vq'),
              '--cfg-options', f'train_dataloader.dataset.data_root={demo_root}',
              'train_dataloader.batch_size=4', 'train_cfg.max_iters=3',
              'default_hooks.logger.interval=1', 'log_processor.window_size=1'], env=env)
    assert scalars(str(tmp_path / 'vq'), 'used_codes')
    env = dist_env()
    env['OMP_NUM_THREADS'] = '1'
    run_tool(['bash', 'tools/dist_train.sh', RAR_DEMO, '2', '--work-dir', str(tmp_path / 'rar'),
              *_rar_options(token_file, tokenizer_ckpt, 3, 1, 2)], env=env)
    assert osp.isfile(str(tmp_path / 'rar' / 'iter_3.pth'))
    assert len(scalars(str(tmp_path / 'rar'), 'loss')) == 3


def test_generate_writes_grids_and_the_adm_npz(token_file, tokenizer_ckpt, tmp_path):
    from mmengine.config import Config

    from mmmim.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, RAR_DEMO))
    cfg.model.tokenizer.init_cfg.checkpoint = tokenizer_ckpt
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp_path / 'iter_1.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out = str(tmp_path / 'samples.npz')
    run_tool([sys.executable, 'tools/generate.py', RAR_DEMO, ckpt, '--classes', '0', '3',
              '--num-per-class', '3', '--out', out, '--guidance', '2.0'], env=ENV)
    with np.load(out) as f:
        arr, labels = f['arr_0'], f['labels']
    assert arr.dtype == np.uint8 and arr.shape == (6, 32, 32, 3)
    assert labels.tolist() == [0, 0, 0, 3, 3, 3]
    png = str(tmp_path / 'grid.png')
    proc = run_tool([sys.executable, 'tools/generate.py', RAR_DEMO, ckpt, '--num-per-class', '2',
                     '--out', png, '--batch-size', '3', '--classes', 'ring', '1', '--cfg-options',
                     f'train_dataloader.dataset.ann_file={token_file}'], env=ENV)
    # class names come from the config's token file
    for name in ('grid_ring.png', 'grid_disc.png', 'grid.png'):
        assert osp.isfile(str(tmp_path / name)), proc.stdout
    from PIL import Image
    assert np.asarray(Image.open(str(tmp_path / 'grid_ring.png'))).shape == (2 + 34, 2 + 2 * 34, 3)
    run_tool([sys.executable, 'tools/generate.py', RAR_DEMO, ckpt, '--num-per-class', '1',
              '--classes', '2', '--out', str(tmp_path / 'nonames.png'), '--cfg-options',
              f'train_dataloader.dataset.ann_file={tmp_path}/none.npz'], env=ENV)
    assert osp.isfile(str(tmp_path / 'nonames_2.png'))  # no token file: classes by index
    import subprocess
    again = subprocess.run([sys.executable, 'tools/generate.py', RAR_DEMO, ckpt, '--out', out],
                           cwd=REPO, capture_output=True, text=True, env=ENV)
    assert again.returncode != 0 and '--force' in again.stderr
    bad = subprocess.run([sys.executable, 'tools/generate.py', RAR_DEMO, ckpt, '--classes', '9',
                          '--out', str(tmp_path / 'x.png')], cwd=REPO, capture_output=True,
                         text=True, env=ENV)
    assert bad.returncode != 0 and 'outside [0, 4)' in bad.stderr


def test_weight_decay_is_the_official_exclusion_rule():
    """utils/train_utils.py create_optimizer: no decay where ndim < 2 or the name contains
    ln / bias / embedding / norm / gamma / embed / latent_tokens / mask_token, written out."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    from mmmim.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs/rar/rar-b_32xb64-bf16-250ki_in1k-256.py'))
    demo = Config.fromfile(osp.join(REPO, RAR_DEMO))
    demo.model.tokenizer = None
    model = MODELS.build(demo.model)
    optim = {k: v for k, v in cfg.optim_wrapper.items() if k != 'dtype'}
    wrapper = build_optim_wrapper(model, dict(optim, type='OptimWrapper'))
    wd = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    words = ('ln', 'bias', 'latent_tokens', 'mask_token', 'embedding', 'norm', 'gamma', 'embed')
    for name, p in model.generator.named_parameters():
        official = 0.0 if p.ndim < 2 or any(w in name for w in words) else 0.03
        assert wd[id(p)] == official, name
    assert wd[id(model.generator.cls_token)] == 0.03  # (1, 1, D) and no excluded word


def test_tokenise_writes_reconstructions(tokenizer_ckpt, demo_root, tmp_path):
    from PIL import Image
    out, recon = str(tmp_path / 'val.npz'), tmp_path / 'recon'
    run_tool([sys.executable, 'tools/misc/tokenize_images.py', VQ_DEMO, str(demo_root / 'val'),
              out, '--checkpoint', tokenizer_ckpt, '--size', '32', '--no-flip',
              '--reconstructions', str(recon), '--recon-size', '64'], env=ENV)
    files = sorted(recon.glob('*/*.png'))
    assert len(files) == 16 and files[0].parent.name == 'checker'
    assert np.asarray(Image.open(files[0])).shape == (64, 64, 3)
    with np.load(out) as f:
        assert f['tokens'].shape == (16, 8, 8)  # no flips
