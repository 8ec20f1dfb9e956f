"""Per-location (Python loop) GraphReasoning, as RECCE's reference code runs it.

Only for benchmarking against pycrl's vectorised module: same parameters, same
maths, one loop iteration per coarse spatial position.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from pycrl.models.recce import GraphReasoning


class LoopedGraphReasoning(GraphReasoning):
    def forward(self, vert_a, vert_b, vert_c):
        n = vert_a.shape[0]
        emb_a = self.va_embedding(vert_a).flatten(2)                  # B, D, L
        gate_b = (1 - self.va_gated_b(vert_a)).flatten(2)
        gate_c = (1 - self.va_gated_c(vert_a)).flatten(2)
        children = []
        for v, r, embed in ((vert_b, self.ratio[0], self.vb_embedding),
                            (vert_c, self.ratio[1], self.vc_embedding)):
            unfolded = F.unfold(v, kernel_size=r, stride=r)            # B, C*r*r, L
            nodes = unfolded.reshape(n, v.shape[1], r * r, -1).permute(0, 2, 3, 1)
            children.append(embed(nodes))                              # B, r*r, L, D
        aggregated = []
        for emb, gate, reweight in ((children[0], gate_b, self.reweight_ab[0]),
                                    (children[1], gate_c, self.reweight_ac[0])):
            k = emb.shape[1]
            per_location = []
            for j in range(emb_a.shape[-1]):
                a = emb_a[:, :, j].unsqueeze(1).expand(-1, k, -1)     # B, k, D
                b = emb[:, :, j, :]                                    # B, k, D
                w = torch.softmax(F.relu(reweight(torch.cat([a, b], dim=-1))), dim=1)
                per_location.append(torch.bmm(b.transpose(1, 2), w)[..., 0] * gate[:, :, j])
            aggregated.append(torch.stack(per_location, dim=-1))
        out = torch.sigmoid(torch.cat(aggregated + [emb_a], dim=1))
        return self.reproject(out.reshape(n, -1, vert_a.shape[2], vert_a.shape[3]))


def with_looped_reasoning(model: nn.Module) -> nn.Module:
    """A copy of a RECCE model whose ``reasoning`` runs the looped definition."""
    looped = copy.deepcopy(model)
    looped.reasoning.__class__ = LoopedGraphReasoning
    return looped
