"""snnbench: one harness for the spiking neural networks the field compares."""

__version__ = "0.1.0"
