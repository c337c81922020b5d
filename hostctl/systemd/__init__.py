"""hostctl.systemd"""
