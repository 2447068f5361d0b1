"""An independent forward pass written from fairseq's formulas, reading fairseq state-dict names directly
(Wav2VecCtc / TransformerSentenceEncoderWithAdapterLayer / AdapterFast, and Wav2VecClassification for LID),
used only to check our model.
Follows fairseq-mms.md §3.7: fp32 conv-stack norms, pre-LN encoder with the final LN after the layers,
adapter `x + W_b relu(W_a LN(x) + b_a) + b_b` after each whole layer, padded frames forced to blank."""

import torch
import torch.nn.functional as F


def forward(state: dict, source: torch.Tensor, lengths: torch.Tensor, conv_layers, heads: int,
            layer_norm_first: bool, group_norm: bool = False, slot: int = 0, pos_groups: int = 16) -> torch.Tensor:
    x, pad = encode(state, source, lengths, conv_layers, heads, layer_norm_first, group_norm, slot, pos_groups)
    logits = F.linear(x, state["w2v_encoder.proj.weight"], state["w2v_encoder.proj.bias"])
    logits[pad] = float("-inf")
    logits[..., 0][pad] = 0
    return logits


def lid_forward(state: dict, source: torch.Tensor, lengths: torch.Tensor, conv_layers, heads: int,
                layer_norm_first: bool, activation: str = "gelu", pos_groups: int = 16) -> torch.Tensor:
    """Wav2VecClassification with MeanPoolingFast (fairseq-mms.md §3.8): h = pooling_layer.linear(x), mean over
    the valid frames, activation_fn, pooling_layer.projection -> logits [B, num_langs]."""
    x, pad = encode(state, source, lengths, conv_layers, heads, layer_norm_first, pos_groups=pos_groups)
    h = F.linear(x, state["pooling_layer.linear.weight"], state["pooling_layer.linear.bias"])
    valid = (~pad).to(h.dtype)[..., None]
    h = (h * valid).sum(1) / valid.sum(1)
    # fairseq.utils.get_activation_fn; fairseq's gelu runs in float32
    h = {"gelu": lambda z: F.gelu(z.float()).type_as(z), "relu": F.relu, "tanh": torch.tanh,
         "linear": lambda z: z}[activation](h)
    return F.linear(h, state["pooling_layer.projection.weight"], state["pooling_layer.projection.bias"])


def encode(state: dict, source: torch.Tensor, lengths: torch.Tensor, conv_layers, heads: int,
           layer_norm_first: bool, group_norm: bool = False, slot: int = 0, pos_groups: int = 16):
    """Wav2Vec2Model's encoder output [B, T, D] and the frame padding mask [B, T] (True = padding)."""
    P = "w2v_encoder.w2v_model."
    x = source[:, None]
    for i, (dim, k, s) in enumerate(conv_layers):
        x = F.conv1d(x, state[f"{P}feature_extractor.conv_layers.{i}.0.weight"],
                     state.get(f"{P}feature_extractor.conv_layers.{i}.0.bias"), stride=s)
        if not group_norm:
            x = F.layer_norm(x.transpose(1, 2), (dim,), state[f"{P}feature_extractor.conv_layers.{i}.2.1.weight"],
                             state[f"{P}feature_extractor.conv_layers.{i}.2.1.bias"], 1e-5).transpose(1, 2)
        elif i == 0:
            x = F.group_norm(x, dim, state[f"{P}feature_extractor.conv_layers.0.2.weight"],
                             state[f"{P}feature_extractor.conv_layers.0.2.bias"], 1e-5)
        x = F.gelu(x)
    x = x.transpose(1, 2)
    x = F.layer_norm(x, x.shape[-1:], state[P + "layer_norm.weight"], state[P + "layer_norm.bias"], 1e-5)
    out_len = lengths.clone()
    for _, k, s in conv_layers:
        out_len = torch.div(out_len - k, s, rounding_mode="floor") + 1
    pad = torch.arange(x.shape[1])[None] >= out_len[:, None]  # True = padding
    x = F.linear(x, state[P + "post_extract_proj.weight"], state[P + "post_extract_proj.bias"])
    x = x.masked_fill(pad[..., None], 0)
    g, v = state[P + "encoder.pos_conv.0.weight_g"], state[P + "encoder.pos_conv.0.weight_v"]
    w = g * v / v.norm(dim=(0, 1), keepdim=True)  # weight norm over dim 2
    k = w.shape[2]
    y = F.conv1d(x.transpose(1, 2), w, state[P + "encoder.pos_conv.0.bias"], padding=k // 2, groups=pos_groups)
    y = y[:, :, :-1] if k % 2 == 0 else y
    x = x + F.gelu(y).transpose(1, 2)

    def ln(h, name):
        return F.layer_norm(h, h.shape[-1:], state[name + ".weight"], state[name + ".bias"], 1e-5)

    def lin(h, name):
        return F.linear(h, state[name + ".weight"], state[name + ".bias"])

    def mha(h, L):
        b, t, d = h.shape
        hd = d // heads
        q = lin(h, f"{L}.self_attn.q_proj") * hd ** -0.5
        kk = lin(h, f"{L}.self_attn.k_proj")
        vv = lin(h, f"{L}.self_attn.v_proj")
        q, kk, vv = (z.view(b, t, heads, hd).transpose(1, 2) for z in (q, kk, vv))
        att = q @ kk.transpose(-1, -2)
        att = att.masked_fill(pad[:, None, None, :], float("-inf"))
        att = att.float().softmax(-1)
        return lin((att @ vv).transpose(1, 2).reshape(b, t, d), f"{L}.self_attn.out_proj")

    if not layer_norm_first:
        x = ln(x, P + "encoder.layer_norm")
    n_layers = len({key.split(".")[4] for key in state if key.startswith(P + "encoder.layers.")})
    for i in range(n_layers):
        L = f"{P}encoder.layers.{i}"
        if layer_norm_first:
            x = x + mha(ln(x, f"{L}.self_attn_layer_norm"), L)
            x = x + lin(F.gelu(lin(ln(x, f"{L}.final_layer_norm"), f"{L}.fc1")), f"{L}.fc2")
        else:
            x = ln(x + mha(x, L), f"{L}.self_attn_layer_norm")
            x = ln(x + lin(F.gelu(lin(x, f"{L}.fc1")), f"{L}.fc2"), f"{L}.final_layer_norm")
        A = f"{L}.adapter_layer."
        if A + "W_a" in state:
            h = F.layer_norm(x, x.shape[-1:], state[A + "ln_W"][slot], state[A + "ln_b"][slot], 1e-5)
            h = F.relu(F.linear(h, state[A + "W_a"][slot], state[A + "b_a"][slot]))
            x = x + F.linear(h, state[A + "W_b"][slot], state[A + "b_b"][slot])
    if layer_norm_first:
        x = ln(x, P + "encoder.layer_norm")
    return x, pad
