"""Model registry, training and pre-annotation: the only package that imports torch (lazily)."""
