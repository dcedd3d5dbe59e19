"""Configuration primitives, the bottom layer (no torch): component registries and the spec models
they derive from factory signatures, field types shared by catalogs, reading a spec file (limits,
strict YAML) and ``key.path=value`` overrides."""
