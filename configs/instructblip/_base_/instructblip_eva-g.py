# InstructBLIP on EVA ViT-g/14 (Dai et al., 2023; LAVIS blip2_t5_instruct.py /
# blip2_vicuna_instruct.py): BLIP-2's tower and Q-Former, the instruction (BERT tokens, at most
# 128, truncated on the left) after the 32 queries inside the Q-Former; LLM input at most 128
# tokens, output at most 256. Initialised from the BLIP-2 stage-2 file of the same LLM (LAVIS:
# blip2_pretrained_flant5xl.pth, ...; the instruction-side embeddings from bert-base-uncased).
# Recipe of the paper (LAVIS publishes no InstructBLIP training yaml): AdamW (0.9, 0.999),
# weight decay 0.05, lr warmed up linearly from 1e-8 to 1e-5 over 1,000 steps then cosine to 0,
# at most 60k steps, validation every 3k; 16 A100 GPUs; batch 192 / 128 / 64 for the 3B / 7B /
# 11-13B models.
_base_ = ['../../blip2/_base_/blip2_eva-g.py', 'instruction_templates.py']

model = dict(
    type='InstructBLIP',
    prompt=dict(vqa={{_base_.vqa}}, caption={{_base_.caption}}),
    eval_prompt=dict(vqa={{_base_.eval_vqa}}, caption={{_base_.eval_caption}}),
    max_txt_len=128,
    max_output_txt_len=256,
    qformer_max_txt_len=128,
    generation=dict(num_beams=5, max_new_tokens=256, min_length=1))

vqa_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.5, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs', algorithm_keys=['question', 'gt_answer', 'gt_answer_weight'],
         meta_keys=['question_id']),
]
caption_pipeline = {{_base_.train_pipeline}}
# The held-in training sets available in LAVIS layouts (configs/instructblip/README.md lists
# all 13 held-in and 13 held-out sets); concatenated, not sampled by sqrt(size) as the paper.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type='CaptionDataset', data_root='data/coco/',
                 ann_file='annotations/coco_karpathy_train.json', pipeline=caption_pipeline),
            dict(type='CaptionDataset', data_root='data/textcaps/',
                 ann_file='annotations/textcaps_train.json', pipeline=caption_pipeline),
            dict(type='VQADataset', data_root='data/coco/',
                 ann_file='annotations/vqa_train.json', pipeline=vqa_pipeline),
            dict(type='VQADataset', data_root='data/coco/',
                 ann_file='annotations/okvqa_train.json', pipeline=vqa_pipeline),
            dict(type='VQADataset', data_root='data/coco/',
                 ann_file='annotations/aokvqa_v1p0_train.json', pipeline=vqa_pipeline),
            dict(type='VQADataset', data_root='data/ocrvqa/',
                 ann_file='annotations/ocrvqa_train.json', pipeline=vqa_pipeline),
        ]))
optim_wrapper = dict(
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=1e-5, betas=(0.9, 0.999), weight_decay=0.05))
max_iters = 60000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', T_max=max_iters - 1000, eta_min=0.0, by_epoch=False,
         begin=1000, end=max_iters),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=3000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=3000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
