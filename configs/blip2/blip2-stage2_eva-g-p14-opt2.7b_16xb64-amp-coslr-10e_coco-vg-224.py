# BLIP-2 stage 2 with OPT-2.7b (lavis/projects/blip2/train/pretrain_stage2.yaml,
# blip2_pretrain_opt2.7b.yaml): the stage-1 Q-Former (text side dropped) and opt_proj feed 32
# soft prompts to the frozen OPT in fp16; LM loss on caption + newline, prompt ''. 16 GPUs x 64,
# lr 1e-4 (2,000 warm-up steps from 1e-6), 10 epochs. data/pretrained/opt-2.7b: a local copy
# of facebook/opt-2.7b; stage 1: work_dirs or LAVIS's blip2_pretrained.pth.
_base_ = ['_base_/blip2_eva-g.py']

model = dict(
    type='BLIP2',
    llm=dict(path='data/pretrained/opt-2.7b', dtype='fp16', output_end='\n'),
    max_txt_len=32,
    prompt='',
    init_cfg=dict(type='Pretrained', checkpoint='data/pretrained/blip2_pretrained.pth'))
train_dataloader = dict(batch_size=64)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', T_max=10, eta_min=1e-5, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
]
