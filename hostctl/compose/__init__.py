"""Compose projects: compose files read into the canonical model (project.py is the
public face) and turned into hostctl declarations and units."""
