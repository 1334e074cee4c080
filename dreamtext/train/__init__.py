"""Training (DESIGN §4, §5): the objective, the loop, its data stream and state, EMA, the encoder's
pre-training and the word verifier's training."""
