# Transfusion 0.37b (the paper's Table 2: 24 layers, width 1024, 16 heads; SwiGLU, RoPE, RMSNorm),
# the recipe of _base_/transfusion_captions-256.py.
_base_ = ['_base_/transfusion_captions-256.py']

model = dict(generator=dict(arch='0.37b'))
