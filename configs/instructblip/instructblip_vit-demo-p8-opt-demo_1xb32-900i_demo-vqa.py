# InstructBLIP on the demo question-answer pairs (docs/blip2.md): the question, in the
# prompt 'Question: {} Short answer:', enters the Q-Former after the 8 queries (bidirectional
# mask); only the query outputs reach the frozen tiny OPT. Initialised from the BLIP-2 stage-1
# demo (Q-Former with its text side, as InstructBLIP's Q-Former reads text). LM loss on the
# answer only; VQA accuracy (official normalisation) on the 192 validation questions.
_base_ = ['../blip2/_base_/blip2_demo.py']

model = dict(
    type='InstructBLIP',
    llm={{_base_.llm}},
    prompt='Question: {} Short answer:',
    max_txt_len=64,
    max_output_txt_len=16,
    generation=dict(num_beams=1, max_new_tokens=8),
    init_cfg=dict(type='Pretrained', checkpoint='work_dirs/blip2_stage1_demo/iter_600.pth'))
train_dataloader = dict(dataset={{_base_.vqa_train}})
val_dataloader = {{_base_.vqa_val_loader}}
val_evaluator = dict(type='VQAAccuracy')
val_cfg = dict(type='ValLoop')

max_iters = 900
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=5e-5, by_epoch=False,
         begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
