import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmmim  # noqa: F401  (allow-lists MMEngine's checkpoint types)


class Evil:
    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_message_hub_state_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('test_safe_load')
    for i in range(5):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': hub.state_dict(), 'w': torch.ones(2)}, path)
    ckpt = torch.load(path, weights_only=True)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.current() == pytest.approx(0.2)
    assert buf.statistics('mean') == pytest.approx(sum(1 / (i + 1) for i in range(5)) / 5)


def test_other_getattr_calls_are_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with pytest.raises(pickle.UnpicklingError, match='__init__'):
        torch.load(path, weights_only=True)
