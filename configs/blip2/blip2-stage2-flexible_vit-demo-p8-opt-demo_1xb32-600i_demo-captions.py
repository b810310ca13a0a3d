# The stage-2 demo on MMEngine's FlexibleRunner (docs/blip2.md), the runner the FSDP recipe
# (blip2-stage2_eva-g-p14-opt6.7b_16xb64-bf16-fsdp-coslr-10e_coco-vg-224.py) uses. DDPStrategy
# here: torch FSDP refuses CPU devices, so on a GPU machine swap in that config's strategy.
_base_ = ['blip2-stage2_vit-demo-p8-opt-demo_1xb32-600i_demo-captions.py']

runner_type = 'FlexibleRunner'
strategy = dict(type='DDPStrategy')
