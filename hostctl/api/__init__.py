"""hostctl.api"""
