# BLIP-2 stage 2 with OPT-6.7B on MMEngine's FlexibleRunner + FSDPStrategy: the same recipe as
# blip2-stage2_eva-g-p14-opt6.7b_16xb64-amp-coslr-10e_coco-vg-224.py, the model (frozen LLM and
# tower included) sharded over the GPUs in bf16, one FSDP unit per OPT decoder layer and per ViT
# block; use_orig_params for the mix of frozen and trained parameters.
_base_ = ['blip2-stage2_eva-g-p14-opt6.7b_16xb64-amp-coslr-10e_coco-vg-224.py',
          '../_base_/strategies/fsdp_bf16.py']

custom_imports = dict(imports=['mmmim.evaluation', 'mmmim.engine'], allow_failed_imports=False)
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
                     paramwise_cfg=dict(bias_decay_mult=0.0, norm_decay_mult=0.0,
                                        bypass_duplicate=True))
