# Linear probing of the demo MAE on the demo images' four classes.
_base_ = 'mae-vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'
data_root = 'data/demo'
model = dict(
    data_preprocessor=dict(num_classes=4),
    backbone=dict(
        arch=dict(_delete_=True, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
        img_size=64,
        patch_size=8,
        frozen_stages=4,
        init_cfg=dict(checkpoint='work_dirs/mae_demo/epoch_80.pth')),
    neck=dict(input_features=128),
    head=dict(num_classes=4, in_channels=128))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1, ))
test_evaluator = val_evaluator
max_epochs = 10
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',  # fp32 on the CPU
    optimizer=dict(type='LARS', lr=1.0, weight_decay=0.0, momentum=0.9))  # tuned for the demo
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=0.0, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=5))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
