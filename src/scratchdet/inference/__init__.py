"""scratchdet.inference"""
