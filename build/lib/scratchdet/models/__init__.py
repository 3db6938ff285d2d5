"""Detectors as plain ``nn.Module``s (torch/torchvision only; never Lightning)."""
