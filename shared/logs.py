import logging


class BriefFormatter(logging.Formatter):
    """One line per record: the message, without the traceback attached to it."""

    def __init__(self):
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def formatException(self, ei):
        return ""

    def format(self, record):
        record.exc_text = ""
        return super().format(record).rstrip()
