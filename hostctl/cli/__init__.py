"""hostctl.cli"""
