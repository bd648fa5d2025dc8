"""What the appliance (`edge/`) and the model factory (`bicameral/`, `mikado/`, `simcell/`) share.

The lowest layer (docs/contracts.md section 0): the model file's metadata and preprocessing, read
by the appliance and written and trained against by the factory, and the command-line error type
every `binpick` subcommand raises. It imports neither half, only numpy and onnx, so the appliance
installs without the factory's torch and MuJoCo (`pip install .`).
"""
