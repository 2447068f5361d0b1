"""mms: Massively Multilingual Speech, simply working."""

__version__ = "0.1.0"
