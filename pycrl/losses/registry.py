"""Name -> loss class table (the DeepfakeBench LOSSFUNC idea, one entry per recipe family)."""

from __future__ import annotations

from pycrl.registry import Registry

LOSSES = Registry("loss", name_attr="loss_name")

# The names callers use; bound to the table above.
register_loss = LOSSES.register
get_loss_class = LOSSES.get
create_loss = LOSSES.create
list_losses = LOSSES.names
