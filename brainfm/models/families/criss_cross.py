"""The criss-cross transformer (CBraMod-style): brainfm's default family.

Heads: ``pooled`` (mean over real channels and patches, then linear; any montage and length)
and ``flatten`` (every token through an MLP, CBraMod's downstream head; one fixed montage and
window length). Pretrained by masked patch prediction; loads the original CBraMod weights.
"""
from __future__ import annotations

from ...data.standardise import StandardiseConfig
from ..cbramod_import import (CBRAMOD_CONFIG, cbramod_n_layers, convert_cbramod_state_dict,
                              is_cbramod_state_dict)
from ..criss_cross import CrissCrossTransformer, channel_encoding
from ..family import Family, ImportFormat


def classifier(model: CrissCrossTransformer, head: str, n_classes: int, n_chans: int,
               n_patches: int) -> CrissCrossTransformer:
    """The backbone with its head swapped for a classification head (trained whole)."""
    FAMILY.check_head(head)
    model.reset_head(head, n_outputs=n_classes, n_chans=n_chans, n_patches=n_patches)
    return model


#: The original CBraMod's published weights: the ``cbramod`` configuration, and brainfm's
#: default contract, which is CBraMod's (200 Hz, 0.3-75 Hz, units of 100 uV).
CBRAMOD = ImportFormat(
    name="cbramod", recognises=is_cbramod_state_dict, convert=convert_cbramod_state_dict,
    config=lambda state: {**CBRAMOD_CONFIG, "n_layers": cbramod_n_layers(state)},
    extra={"standardise": StandardiseConfig().as_dict(), "sfreq": 200.0})

FAMILY = Family(
    name="criss_cross",
    model_class=CrissCrossTransformer,
    default_config="criss_cross_small",
    small_config=dict(d_model=32, n_layers=2, n_heads=4, d_ff=64, patch_len=40, dropout=0.0),
    channel_encoding=channel_encoding,
    heads=("pooled", "flatten"),
    classifier=classifier,
    tasks={"masked_patch": "brainfm.tasks.pretrain:MaskedPatchPretraining"},
    description="a criss-cross transformer (CBraMod-style: spatial and temporal attention "
                "side by side over 1-patch tokens)",
    import_formats=(CBRAMOD,),
)
