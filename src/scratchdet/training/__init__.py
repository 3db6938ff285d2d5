"""scratchdet.training"""
