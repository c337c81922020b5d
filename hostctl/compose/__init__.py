"""Compose projects: compose files read into the canonical model (project.py is the
public face) and turned into hostctl declarations and units (translate.py: the model as
declarations; units.py: the generator's part; installed.py: where projects live)."""
