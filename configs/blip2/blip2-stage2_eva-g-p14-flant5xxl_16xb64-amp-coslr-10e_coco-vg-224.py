# BLIP-2 stage 2 with Flan-T5-xxl (blip2_pretrain_flant5xxl.yaml): 32 soft prompts into the
# encoder of the frozen T5 (bf16, dense_act_fn 'gelu' as LAVIS sets it); each caption split at a
# random word into prefix (encoder) and suffix (target; the prefix LM loss of the paper).
# Schedule as pretrain_stage2.yaml. data/pretrained/flan-t5-xxl: a local google/flan-t5-xxl.
_base_ = ['_base_/blip2_eva-g.py']

model = dict(
    type='BLIP2',
    llm=dict(path='data/pretrained/flan-t5-xxl', dtype='bf16'),
    max_txt_len=32,
    prompt='',
    prefix_lm=True,
    init_cfg=dict(type='Pretrained', checkpoint='data/pretrained/blip2_pretrained.pth'))
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(dtype='bfloat16')
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', T_max=10, eta_min=1e-5, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
]
