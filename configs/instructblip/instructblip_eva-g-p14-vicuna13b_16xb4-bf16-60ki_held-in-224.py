# InstructBLIP with vicuna-13b (_base_/instructblip_eva-g.py): 16 GPUs x 4 = 64 samples a step.
# data/pretrained/vicuna-13b: a local HF folder of the LLM (Vicuna v1.1 weights, as LAVIS); the
# Q-Former / projection start from the BLIP-2 stage-2 file of the LLM (blip2_pretrained_vicuna13b.pth: convert
# LAVIS's or train configs/blip2).
_base_ = ['_base_/instructblip_eva-g.py']

model = dict(
    llm=dict(path='data/pretrained/vicuna-13b', dtype='fp16', output_end='</s>',
             special_tokens=dict(pad_token='[PAD]', bos_token='</s>', eos_token='</s>',
                                 unk_token='</s>')),
    init_cfg=dict(type='Pretrained', checkpoint='data/pretrained/blip2_pretrained_vicuna13b.pth'))
train_dataloader = dict(batch_size=4)
