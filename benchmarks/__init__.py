"""binpick's benchmarks: each module is a command run from the repository root,
`python -m benchmarks.<name> --help`, and prints the machine it ran on (`machine_info`)."""
