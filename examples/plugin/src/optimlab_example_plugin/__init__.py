"""An example optimlab plugin: Signum (sign of an EMA momentum) and a tiny CNN.

After `pip install --no-deps ./examples/plugin`, `optimlab list` shows `signum` and `tinycnn`, and
`optimlab compare --model tinycnn --optimizers sgdm signum wgd-signum` compares them on the same
footing as the built-ins (paired seeds, the same statistics).
"""

from optimlab_example_plugin.models import tiny_cnn
from optimlab_example_plugin.optim import Signum

__all__ = ["Signum", "tiny_cnn"]
