# Transfusion 7b (the paper's Table 2: 32 layers, width 4096, 32 heads; SwiGLU, RoPE, RMSNorm),
# the recipe of _base_/transfusion_captions-256.py.
_base_ = ['_base_/transfusion_captions-256.py']

model = dict(generator=dict(arch='7b', with_cp=True))
