"""The EEGDM-style diffusion denoiser.

Its representation is the frozen backbone's latents (gate spread per block and 1 s patch,
clean input at step 1; ``forward_features``: (B, C, N, layers * width)). Heads: ``fusion``
(latent fusion transformer) and ``pooled`` (pooled latents, linear). Fine-tuning trains the
head on latents cached once per weights and windows, not on the backbone's output every
epoch. Pretrained by DDPM; loads the original EEGDM weights.
"""
from __future__ import annotations

from ..diffusion_denoiser import DiffusionDenoiser, channel_encoding
from ..eegdm_import import convert_eegdm_state_dict, eegdm_config, is_eegdm_state_dict
from ..family import Family, ImportFormat
from ..latent_cache import LatentCache, cached_latent_windows
from ..latent_fusion import LatentClassifier, LatentFusionHead, PooledLatentHead
from ..transforms import staged_mu_law


def classifier(model: DiffusionDenoiser, head: str, n_classes: int, n_chans: int,
               n_patches: int) -> LatentClassifier:
    """A trainable head on the frozen backbone's latents."""
    FAMILY.check_head(head)
    size = (len(model.blocks), model.d_model, n_classes)
    module = LatentFusionHead(*size) if head == "fusion" else PooledLatentHead(*size)
    return LatentClassifier(model, module, input_transform=staged_mu_law)


def cached_inputs(classifier: LatentClassifier, windows, cache_dir, batch_size: int = 64):
    """The windows' latents, computed once per weights and windows under ``cache_dir``."""
    return cached_latent_windows(classifier, windows, LatentCache(cache_dir / "latents"),
                                 batch_size)


FAMILY = Family(
    name="diffusion",
    model_class=DiffusionDenoiser,
    default_config="eegdm_tiny",
    small_config=dict(d_model=8, d_state=8, n_layers=2, d_cond=16, d_time_embed=8,
                      patch_len=40),
    channel_encoding=channel_encoding,
    heads=("fusion", "pooled"),
    classifier=classifier,
    cached_inputs=cached_inputs,
    tasks={"diffusion": "brainfm.tasks.diffusion:DiffusionPretraining"},
    task_markers=("prediction_type",),
    description="an EEGDM-style diffusion denoiser (gated S4D blocks, one channel at a "
                "time); its representation is the gate activations of its blocks",
    import_formats=(ImportFormat(name="eegdm", recognises=is_eegdm_state_dict,
                                 convert=convert_eegdm_state_dict, config=eegdm_config),),
)
