"""SQL the routes run, one module per resource; routes stay about HTTP."""
