"""Keras layers of univision (serializable under the `univision` package)."""
