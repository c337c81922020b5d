"""hostctl.launcher"""
