"""The networks and their files (DESIGN §2, §3): ψ, the UNet with character cross-attention, the attention
capture and the §3 masks, the whole DreamTextModel, the word verifier, checkpoints."""
