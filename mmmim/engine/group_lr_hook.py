"""The lr of every named parameter group in the training log."""
from mmengine.hooks import Hook

from mmmim.registry import HOOKS


@HOOKS.register_module()
class GroupLrHook(Hook):
    """Log each named parameter group's lr as ``{name}_lr`` (e.g. ``layer_0_lr``).

    MMEngine logs ``base_lr`` and the lr of the first group only, which under
    layer-wise lr decay is the embeddings' small lr.
    :class:`~mmmim.engine.LayerDecayOptimWrapperConstructor` names its groups
    after their layer; groups of one name and one lr (with and without
    weight decay) give one entry, a second lr under the same name gets the
    group's index (``layer_13_2_lr``). Groups without a name are left out.
    The values join the text log's lr section, the JSON log and the
    visualizer backends like ``lr``.
    """

    priority = 'HIGH'  # after RuntimeInfoHook (VERY_HIGH) has set this iteration's lr

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        lrs = {}
        for index, group in enumerate(runner.optim_wrapper.param_groups):
            name = group.get('name')
            if name is None:
                continue
            if name in lrs and lrs[name] != group['lr']:
                name = f'{name}_{index}'
            lrs[name] = group['lr']
        for name, lr in lrs.items():
            runner.message_hub.update_scalar(f'train/{name}_lr', lr)
