"""The declarative layer: the spec schema, the registries and components a spec names, their contracts, pipeline assembly and sweeps."""
