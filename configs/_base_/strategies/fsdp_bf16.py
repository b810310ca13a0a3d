# MMEngine's FlexibleRunner + FSDPStrategy: the model sharded over the GPUs (parameters, gradients,
# optimizer states), one FSDP unit per transformer block (mmmim.engine.fsdp), bf16 parameters,
# reduction and buffers; use_orig_params keeps per-parameter groups (weight decay, frozen parts).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy='transformer_block_wrap_policy',
        mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='bfloat16',
                             buffer_dtype='bfloat16'),
        use_orig_params=True))
