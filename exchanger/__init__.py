"""exchanger: the message-exchange hub of an electronic port."""

__version__ = "0.1.0"
