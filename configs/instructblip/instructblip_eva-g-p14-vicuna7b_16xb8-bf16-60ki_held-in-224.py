# InstructBLIP with vicuna-7b (_base_/instructblip_eva-g.py): 16 GPUs x 8 = 128 samples a step.
# data/pretrained/vicuna-7b: a local HF folder of the LLM (Vicuna v1.1 weights, as LAVIS); the
# Q-Former / projection start from the BLIP-2 stage-2 file of the LLM (blip2_pretrained_vicuna7b.pth: convert
# LAVIS's or train configs/blip2).
_base_ = ['_base_/instructblip_eva-g.py']

model = dict(
    llm=dict(path='data/pretrained/vicuna-7b', dtype='fp16', output_end='</s>',
             special_tokens=dict(pad_token='[PAD]', bos_token='</s>', eos_token='</s>',
                                 unk_token='</s>')),
    init_cfg=dict(type='Pretrained', checkpoint='data/pretrained/blip2_pretrained_vicuna7b.pth'))
train_dataloader = dict(batch_size=8)
