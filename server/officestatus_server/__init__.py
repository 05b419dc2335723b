"""OfficeStatus License Server 6: decides who may use OfficeStatus at one customer site."""

__version__ = "6.0.0"
