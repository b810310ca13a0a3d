# Transfusion 0.76b (the paper's Table 2: 24 layers, width 1536, 24 heads; SwiGLU, RoPE, RMSNorm),
# the recipe of _base_/transfusion_captions-256.py.
_base_ = ['_base_/transfusion_captions-256.py']

model = dict(generator=dict(arch='0.76b'))
