"""The `clusterhub` administration command line: schema, demo data, import/export, audit, serving."""
