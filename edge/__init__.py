"""binpick appliance: everything that runs on the robot cell. Never imports torch."""

__version__ = "0.1.0"
