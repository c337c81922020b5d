"""hostctl.runtime"""
