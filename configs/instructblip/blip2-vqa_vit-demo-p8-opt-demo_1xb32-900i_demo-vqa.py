# The baseline of the InstructBLIP demo (docs/blip2.md): BLIP-2 stage 2 trained on the
# same question-answer pairs with the same prompt, schedule and initialisation, the question
# reaching only the LLM (the Q-Former sees the image alone).
_base_ = ['./instructblip_vit-demo-p8-opt-demo_1xb32-900i_demo-vqa.py']

model = dict(type='BLIP2')
