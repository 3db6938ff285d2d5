"""scratchdet.service"""
