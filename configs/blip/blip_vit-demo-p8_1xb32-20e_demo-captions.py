# BLIP pretraining (ITC + ITM + LM) of BLIP-tiny on the captioned demo data; zero-shot
# image<->text retrieval on the val split every 5 epochs (`retrieval/txt_r1` ...).
_base_ = ['./_base_/blip_demo.py']

model = dict(
    type='BLIP',
    task='pretrain',
    vision_encoder={{_base_.vision_encoder}},
    med={{_base_.med}},
    tokenizer={{_base_.tokenizer}},
    embed_dim=64,
    queue_size=1024,
    data_preprocessor={{_base_.data_preprocessor}})

max_epochs = 20
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05))
# The official shape: linear warm-up, then x0.9 per epoch.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=64),
    dict(type='ExponentialLR', gamma=0.9, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='RetrievalValLoop', k_test=32)
val_evaluator = dict(type='RetrievalRecall')
test_cfg = dict(type='RetrievalTestLoop', k_test=32)
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='SkippedImagesHook'),
    dict(type='ITCAlphaWarmupHook', warmup_epochs=2),
]
