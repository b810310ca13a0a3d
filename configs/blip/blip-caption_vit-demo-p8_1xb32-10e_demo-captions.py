# Captioning fine-tune of the BLIP-tiny pretraining demo (work_dirs/blip_demo) with the
# prompt "a picture of "; beam search 3, min 5 tokens; BLEU-4 and CIDEr on val. The demo
# vocabulary spells the prompt in 10 word pieces (bert-base-uncased: 3), so the official
# 20-token limit becomes 30 here.
_base_ = ['./_base_/blip_demo.py']

model = dict(
    type='BLIP',
    task='caption',
    vision_encoder={{_base_.vision_encoder}},
    med={{_base_.med}},
    tokenizer={{_base_.tokenizer}},
    prompt='a picture of ',
    generation=dict(num_beams=3, max_length=30, min_length=5),
    data_preprocessor={{_base_.data_preprocessor}},
    init_cfg=dict(type='Pretrained', checkpoint='work_dirs/blip_demo/epoch_20.pth'))

max_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05))
# The official schedule: cosine per epoch to 0.
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=0),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
val_evaluator = dict(type='CaptionMetric')
test_cfg = dict(type='TestLoop')
test_evaluator = val_evaluator
