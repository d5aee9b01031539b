"""Networks, member recipes, augmentation and the machinery of a training run."""
