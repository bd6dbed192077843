"""node_app."""
