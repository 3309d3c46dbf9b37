#!/usr/bin/env bash
# Prepare every shared dataset into stores/ (or $BRAINFM_STORE_ROOT). Extra arguments are
# Hydra overrides applied to each run, e.g. `data_prep/prep_shared.sh dtype=float32`.
set -euo pipefail
for dataset in eegmat ssvep_exoskeleton muse_p300 bonn delhi; do
    brainfm-prep "dataset=${dataset}" "$@"
done
