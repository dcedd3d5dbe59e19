"""A pipeline spec, above the components it names: its schema, its cross-section rules, its
one-line messages, its plugins, parsing a file into it, the components' contracts and the built
pipeline."""
