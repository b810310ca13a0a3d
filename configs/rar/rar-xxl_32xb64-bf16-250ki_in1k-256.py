# RAR-XXL on ImageNet-256 (official recipe, see _base_/rar_in1k-256.py):
# width 1408, depth 40, 16 heads, FFN 6144; 1440.8M parameters (generator).
# Sampling defaults of the official README: guidance 8.0, guidance power 1.2, temperature 1.02.
# Official weights: rar_xxl.bin (model.generator.init_cfg or tools/generate.py CONFIG rar_xxl.bin).
_base_ = ['_base_/rar_in1k-256.py']

model = dict(
    generator=dict(arch='xxl'),
    sampling=dict(guidance_scale=8.0, guidance_scale_pow=1.2, temperature=1.02))
