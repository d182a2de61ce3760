"""Quasi-dense contrastive ReID loss over all boxes of a batch (QDTrack style).

The two augmented views of an image share instance ids, so every object that
survives both crops has a positive in the other view. Pairs are taken over the
whole batch: any box of a different instance, in any image, is a negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MASKED = -1.0e4  # stands for -inf in log space; finite in fp16 too


def reid_losses(
    embeddings: torch.Tensor,
    instance_ids: torch.Tensor,
    image_index: torch.Tensor,
    temperature: float = 0.07,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-positive contrastive loss and the auxiliary cosine loss.

    For each anchor i with at least one positive (same id, *another* image):
    ``log(1 + sum_{p in P_i} sum_{n in N_i} exp((s_in - s_ip) / T))`` (QDTrack's
    multi-positive cross-entropy with temperature T; self is excluded, N_i = every
    box with a different id), averaged over such anchors. The auxiliary term is
    QDTrack's L2 between cosine similarity and the 0/1 target, with positive and
    negative pairs weighted equally: ``mean_P (s - 1)^2 + mean_N s^2``, both means
    over all ordered pairs of the batch with i != j (our choice, instead of
    QDTrack's 1:3 sampling).

    Args:
        embeddings: FloatTensor[M, E], rows L2-normalised.
        instance_ids: LongTensor[M]; equal ids are the same object.
        image_index: LongTensor[M], which image of the batch each box comes from.
        temperature: T.

    Returns:
        ``(loss_reid, loss_reid_aux)`` scalars; both zero (still attached to the
        graph) when no anchor has a positive.
    """
    zero = embeddings.sum() * 0.0
    m = embeddings.shape[0]
    if m < 2:
        return zero, zero
    sim = embeddings @ embeddings.t()
    same_id = instance_ids[:, None] == instance_ids[None, :]
    other_image = image_index[:, None] != image_index[None, :]
    not_self = ~torch.eye(m, dtype=torch.bool, device=embeddings.device)
    pos = same_id & other_image
    neg = ~same_id & not_self
    anchors = pos.any(dim=1)
    if not anchors.any():
        return zero, zero
    logits = sim / temperature
    # log sum_p sum_n exp(l_n - l_p) = logsumexp_n(l_n) + logsumexp_p(-l_p); masked
    # entries get MASKED (exp(MASKED) == 0), so an anchor without negatives adds ~0
    neg_lse = torch.logsumexp(logits.masked_fill(~neg, MASKED), dim=1)
    pos_lse = torch.logsumexp((-logits).masked_fill(~pos, MASKED), dim=1)
    loss = F.softplus(neg_lse + pos_lse)[anchors].mean()
    aux = ((sim - 1.0) ** 2)[pos].mean()
    if neg.any():
        aux = aux + (sim**2)[neg].mean()
    return loss, aux
