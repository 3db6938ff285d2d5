"""scratchdet.evaluation"""
