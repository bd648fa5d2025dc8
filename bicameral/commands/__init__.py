"""binpick subcommands."""
