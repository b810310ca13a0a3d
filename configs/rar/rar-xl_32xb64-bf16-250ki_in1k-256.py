# RAR-XL on ImageNet-256 (official recipe, see _base_/rar_in1k-256.py):
# width 1280, depth 32, 16 heads, FFN 5120; 955.4M parameters (generator).
# Sampling defaults of the official README: guidance 6.9, guidance power 1.5, temperature 1.02.
# Official weights: rar_xl.bin (model.generator.init_cfg or tools/generate.py CONFIG rar_xl.bin).
_base_ = ['_base_/rar_in1k-256.py']

model = dict(
    generator=dict(arch='xl'),
    sampling=dict(guidance_scale=6.9, guidance_scale_pow=1.5, temperature=1.02))
