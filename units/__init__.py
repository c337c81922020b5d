"""Unit templates (jinja2) shipped inside the wheel as hostctl.unit_templates."""
