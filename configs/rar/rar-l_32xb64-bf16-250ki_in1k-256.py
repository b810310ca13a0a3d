# RAR-L on ImageNet-256 (official recipe, see _base_/rar_in1k-256.py):
# width 1024, depth 24, 16 heads, FFN 4096; 461.7M parameters (generator).
# Sampling defaults of the official README: guidance 15.5, guidance power 2.5, temperature 1.02.
# Official weights: rar_l.bin (model.generator.init_cfg or tools/generate.py CONFIG rar_l.bin).
_base_ = ['_base_/rar_in1k-256.py']

model = dict(
    generator=dict(arch='l'),
    sampling=dict(guidance_scale=15.5, guidance_scale_pow=2.5, temperature=1.02))
