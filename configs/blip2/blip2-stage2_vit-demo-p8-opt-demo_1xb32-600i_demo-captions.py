# BLIP-2 stage 2 on the captioned demo data (docs/blip2.md): the stage-1 demo's Q-Former (its
# text side dropped, as LAVIS) feeds 8 soft prompts through llm_proj to the frozen tiny OPT of
# tools/misc/train_demo_llm.py; LM loss on the caption (+ newline) only. LAVIS stage-2 recipe
# shortened (600 iterations, lr 5e-4); captions of the 64 validation images scored by CIDEr.
_base_ = ['_base_/blip2_demo.py']

model = dict(
    type='BLIP2',
    llm={{_base_.llm}},
    max_txt_len=32,
    max_output_txt_len=32,
    generation=dict(num_beams=1, max_new_tokens=20),
    init_cfg=dict(type='Pretrained', checkpoint='work_dirs/blip2_stage1_demo/iter_600.pth'))
train_dataloader = dict(dataset={{_base_.caption_train}})
val_dataloader = {{_base_.caption_val_loader}}
val_evaluator = dict(type='CaptionMetric')
val_cfg = dict(type='ValLoop')

max_iters = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=5e-5, by_epoch=False,
         begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
