"""The `landsight` command line: thin commands over the library."""
