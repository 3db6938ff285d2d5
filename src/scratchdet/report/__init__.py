"""scratchdet.report"""
