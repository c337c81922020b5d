"""hostctl.images"""
