# RAR-B on ImageNet-256 (official recipe, see _base_/rar_in1k-256.py):
# width 768, depth 24, 16 heads, FFN 3072; 260.9M parameters (generator).
# Sampling defaults of the official README: guidance 16.0, guidance power 2.75, temperature 1.0.
# Official weights: rar_b.bin (model.generator.init_cfg or tools/generate.py CONFIG rar_b.bin).
_base_ = ['_base_/rar_in1k-256.py']

model = dict(
    generator=dict(arch='b'),
    sampling=dict(guidance_scale=16.0, guidance_scale_pow=2.75, temperature=1.0))
