# Transfusion 7b (the paper's Table 2: 32 layers, width 4096, 32 heads; SwiGLU, RoPE, RMSNorm),
# the recipe of _base_/transfusion_captions-256.py on MMEngine's FlexibleRunner + FSDPStrategy:
# 6.8B parameters with fp32 AdamW states (about 110 GB) do not fit one GPU, so parameters,
# gradients and optimizer states are sharded over the GPUs, one FSDP unit per Llama block
# (mmmim.engine.fsdp), bf16 compute and reduction, gradient checkpointing of every block.
_base_ = ['_base_/transfusion_captions-256.py', '../_base_/strategies/fsdp_bf16.py']

model = dict(generator=dict(arch='7b', with_cp=True))
optim_wrapper = dict(_delete_=True, type='ShardedGradClipOptimWrapper',  # whole-model clip norm
                     optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.95), eps=1e-8,
                                    weight_decay=0.1),
                     clip_grad=dict(max_norm=1.0),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
