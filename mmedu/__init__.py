"""mmedu — reference implementations for an open course on multimodal learning.

Modules (one technique each): ``datasets``, ``audio``, ``text``, ``encoders``,
``fusion``, ``tensor``, ``subspace``, ``adversarial``, ``attention``, ``vae``, ``losses``, ``retrieval``, ``coco``, ``metrics``, ``training``,
``claims`` (asserted results), ``exercises`` (what check functions report), ``reproduce`` (numeric pins) and ``plot``
(the only one that imports matplotlib).  Importing :mod:`mmedu` imports no
submodule, so ``import mmedu.tensor`` never pays for matplotlib or the data.
"""

__version__ = "0.1.0"
