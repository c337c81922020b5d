"""hostctl.units"""
