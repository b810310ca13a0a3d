# Transfusion 0.16b (the paper's Table 2: 16 layers, width 768, 12 heads; SwiGLU, RoPE, RMSNorm),
# the recipe of _base_/transfusion_captions-256.py.
_base_ = ['_base_/transfusion_captions-256.py']

model = dict(generator=dict(arch='0.16b'))
