"""Each layer-decay group's lr in the log, not only the first group's."""
import glob
import json

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmmim.registry import MODELS


class TinyClassifier(BaseModel):
    def __init__(self):
        super().__init__()
        with DefaultScope.overwrite_default_scope('mmmim'):
            self.backbone = MODELS.build(dict(
                type='ViT', arch=dict(embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0),
                img_size=16, patch_size=8))
        self.head = torch.nn.Linear(16, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.head(self.backbone(torch.stack(inputs))[-1]).pow(2).mean())


def test_layer_decay_groups_log_their_own_lr(tmp_path):
    data = [dict(inputs=torch.randn(3, 16, 16)) for _ in range(4)]
    runner = Runner(
        model=TinyClassifier(),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=2, collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3,
                                                               weight_decay=0.05),
                           constructor='LayerDecayOptimWrapperConstructor',
                           paramwise_cfg=dict(layer_decay_rate=0.5)),
        custom_hooks=[dict(type='GroupLrHook')],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmmim',
        experiment_name='group_lr_hook')
    runner.train()
    scalars = [json.loads(line) for line in open(glob.glob(str(tmp_path / '*' / 'vis_data' /
                                                                'scalars.json'))[0])]
    last = scalars[-1]
    # embeddings 0, blocks 1-2, the rest (norm, head) 3: lr * 0.5 ** (3 - layer)
    for layer in range(4):
        assert last[f'layer_{layer}_lr'] == pytest.approx(1e-3 * 0.5**(3 - layer))
    assert last['lr'] == pytest.approx(1e-3 * 0.5**3)  # mmengine's own: the first group
    text = ''.join(open(p).read() for p in glob.glob(str(tmp_path / '*' / '*.log')))
    assert 'layer_0_lr: 1.2500e-04' in text and 'layer_3_lr: 1.0000e-03' in text
