# UperNet on the demo ADE20K-layout data (tools/misc/make_demo_data.py
# data/demo_ade20k --layout ade20k), backbone from the demo MAE
# (work_dirs/mae_demo/epoch_80.pth): 400 iterations (about a minute on two
# CPU cores), 20 of linear warm-up, then poly decay.
_base_ = [
    '_base_/upernet_vit-base.py', '_base_/ade20k_512x512.py', '_base_/schedule_160k.py',
    '_base_/default_runtime.py'
]
data_root = 'data/demo_ade20k'
crop_size = (64, 64)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
        img_size=64,
        patch_size=8,
        out_indices=[0, 1, 2, 3],
        pos_embed='learned',
        rel_pos_bias='per_layer',
        layer_scale_init_value=1.0,
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/mae_demo/epoch_80.pth')),
    neck=dict(embed_dim=128, norm='BN'),
    decode_head=dict(in_channels=[128] * 4, channels=64, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=128, channels=32, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(42, 42)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmim.CheckSegMapSize'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmim.CheckSegMapSize'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',  # fp32 on the CPU
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='mmmim.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65))
max_iters = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=20, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
