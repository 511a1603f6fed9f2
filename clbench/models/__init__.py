"""Models: a backbone plus one linear head (mlp, slim_resnet18, timm)."""
