"""Each pretraining method's demo config trains on the demo data through tools/train.py.

12 iterations at the demo's peak learning rate (no warm-up). The BEiT, BEiT v2
and CAE demos take their targets from randomly initialised tokenizers. A
random DALL-E encoder puts almost every demo patch into one code (BEiT: 4
codes, the most frequent on ~85% of the patches; CAE: 3 codes, ~99.8%), so
there a falling token loss only means that the head learnt the majority code;
the random VQ-KD of BEiT v2 spreads the patches over ~57 codes (~16% for the
most frequent). So these tests compute the targets here, with the run's own
tokenizer (from its checkpoint) and the tokenizer-view normalisation written
out (DALL-E's map to [0.1, 0.9], VQ-KD's [-1, 1]), and ask:

- the first logged token loss is about log(vocab), the cross-entropy of the
  near-uniform prediction of a head that starts near zero (BEiT, BEiT v2;
  CAE's head starts Xavier-uniform): a mean over masked positions of a
  cross-entropy over the tokenizer's vocabulary, not a sum or another vocabulary;
- the last logged masked-token accuracy reaches the majority share of these
  targets (near-constant targets), or beats it by a margin (BEiT v2: the model
  learns which code a patch has, not only how frequent each code is);
- the token loss falls.
"""
import glob
import json
import math
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

from ..conftest import REPO, run_tool

DEMOS = {  # config: (token loss, starts at log(vocab), tokenizer view, accuracy - majority share)
    'configs/beit/beit_vit-demo-p8_1xb32-coslr-20e_demo.py': ('loss', True, 'dalle', -0.1),
    'configs/beitv2/beitv2_vit-demo-p8_1xb32-coslr-20e_demo.py': ('loss_mim', True, 'vqkd', 0.05),
    'configs/cae/cae_vit-demo-p8_1xb32-coslr-20e_demo.py': ('loss_mim', False, 'dalle', -0.1),
}
VQKD_DEMO = 'configs/beitv2/vqkd_vit-demo-p8_1xb32-coslr-20e_demo.py'


def scalars(work_dir):
    """iteration -> logged scalars, from every scalars.json under the work dir."""
    out = {}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        for line in open(path):
            rec = json.loads(line)
            if 'loss' in rec:
                out[rec['iter']] = rec
    return out


def train(config, demo_root, work_dir):
    """Three epochs of 4 iterations (64 images, batch 16) at a constant learning rate."""
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
              f'train_dataloader.dataset.data_root={demo_root}', 'train_dataloader.num_workers=0',
              'train_dataloader.persistent_workers=False', 'train_dataloader.batch_size=16',
              'train_cfg.max_epochs=3', 'param_scheduler.0.start_factor=1.0',
              'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=3',
              'log_processor.window_size=1'], cwd=REPO)
    logged = scalars(work_dir)
    assert sorted(logged) == list(range(1, 13)), sorted(logged)
    return logged


@torch.no_grad()
def target_codes(config, state, demo_root, view):
    """The codes of every patch of the demo training images under the run's tokenizer."""
    from mmengine.config import Config

    from mmmim.registry import MODELS
    model = MODELS.build(Config.fromfile(config).model)
    model.load_state_dict(state)
    paths = sorted(glob.glob(osp.join(str(demo_root), 'train', '*', '*.jpg')))
    rgb = np.stack([cv2.imread(p)[..., ::-1] for p in paths])  # [N, 64, 64, 3] uint8
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float()
    if view == 'dalle':  # DALL-E's map to [eps, 1 - eps], eps = 0.1
        x = (1 - 2 * 0.1) * x / 255 + 0.1
    else:  # the VQ-KD view of the demo: [-1, 1]
        x = x / 127.5 - 1
    return model.tokenizer.get_codebook_indices(x).flatten()


@pytest.mark.parametrize('config', sorted(DEMOS))
def test_token_demo_learns_its_targets(config, demo_root, tmp_path):
    key, uniform_start, view, margin = DEMOS[config]
    logged = train(config, demo_root, str(tmp_path))
    state = torch.load(tmp_path / 'epoch_3.pth', weights_only=True)['state_dict']
    codes = target_codes(config, state, demo_root, view)
    counts = torch.bincount(codes)
    majority = counts.max().item() / codes.numel()
    vocab = state['head.lm_head.bias'].numel()
    print(f'{config}: {int((counts > 0).sum())} of {vocab} codes in the targets, the most '
          f'frequent on {majority:.1%} of the patches')
    if uniform_start:
        # near-constant targets weigh the majority code's starting logit: a few tenths
        assert logged[1][key] == pytest.approx(math.log(vocab), abs=0.25)
    last_acc = np.mean([logged[i]['mim_acc'] for i in (10, 11, 12)])
    assert last_acc >= majority + margin, (last_acc, majority)
    assert sum(logged[i][key] for i in (10, 11, 12)) < sum(logged[i][key] for i in (1, 2, 3))


def test_vqkd_demo_lowers_its_loss_without_collapsing_the_codebook(demo_root, tmp_path):
    logged = train(VQKD_DEMO, demo_root, str(tmp_path))
    assert sum(logged[i]['loss'] for i in (10, 11, 12)) < sum(logged[i]['loss'] for i in (1, 2, 3))
    assert min(logged[i]['used_codes'] for i in (10, 11, 12)) >= 16, logged[12]  # of 64 codes
