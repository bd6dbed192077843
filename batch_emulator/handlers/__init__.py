"""HTTP handlers, one module per resource; each parses the request, calls the model once and renders."""
