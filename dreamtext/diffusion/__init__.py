"""The noise process (training's forward process, the scheduler registry) and the samplers."""
