# InstructBLIP with flan-t5-xxl (_base_/instructblip_eva-g.py): 16 GPUs x 4 = 64 samples a step.
# data/pretrained/flan-t5-xxl: a local HF folder of the LLM; the
# Q-Former / projection start from the BLIP-2 stage-2 file of the LLM (blip2_pretrained_flant5xxl.pth: convert
# LAVIS's or train configs/blip2).
_base_ = ['_base_/instructblip_eva-g.py']

model = dict(
    llm=dict(path='data/pretrained/flan-t5-xxl', dtype='bf16'),
    init_cfg=dict(type='Pretrained', checkpoint='data/pretrained/blip2_pretrained_flant5xxl.pth'))
train_dataloader = dict(batch_size=4)
