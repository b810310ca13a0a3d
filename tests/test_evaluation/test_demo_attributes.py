"""The demo judge of captions: the attributes a caption names."""
import itertools

from mmmim.datasets.demo import CLASSES, COLORS, POSITIONS, caption_of
from mmmim.evaluation.demo_attributes import attribute_accuracy, caption_attributes


def test_captions_name_their_attributes():
    for shape, color, position in itertools.product(CLASSES, COLORS, POSITIONS):
        attrs = dict(shape=shape, color=color, position=position, background=['white', 'brown'])
        for caption in caption_of(attrs):
            got = caption_attributes(caption)
            assert got == dict(shape=shape, color=color, position=position), caption
    assert caption_attributes('a square') == dict(shape=None, color=None, position=None)
    truth = [dict(shape='disc', color='red', position='upper left')] * 2
    pred = [dict(shape='disc', color='red', position='lower left'),
            dict(shape='ring', color='red', position='upper left')]
    assert attribute_accuracy(pred, truth) == {'shape': 0.5, 'color': 1.0, 'position': 0.5,
                                               'shape+color': 0.5}
